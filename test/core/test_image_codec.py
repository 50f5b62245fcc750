"""JPEG / PNG camera images: decoded into the same readings as raw ones, bad data refused."""

import copy
import struct
import time
import zlib

from hypothesis import given, strategies as st
import numpy as np
import pytest

from ilrl_ros.core.image_codec import (compressed_format, decode_image, encode_image,
                                       MAX_PIXELS)
from ilrl_ros.core.observation import image_to_gray, ObservationError
from ilrl_ros.core.readings import IMAGE_ENCODINGS, ImageReading
from ilrl_ros.core.spec import load_spec, parse_spec, SpecError

RNG = np.random.default_rng(0)


def reading(encoding, height=6, width=9):
    channels, dtype = IMAGE_ENCODINGS[encoding]
    high = 65536 if dtype == np.uint16 else 256
    shape = (height, width) if channels == 1 else (height, width, channels)
    return ImageReading(stamp_ns=5, height=height, width=width, encoding=encoding,
                        data=RNG.integers(0, high, shape).astype(dtype))


@pytest.mark.parametrize('encoding', sorted(IMAGE_ENCODINGS))
def test_png_is_lossless_and_keeps_the_grey_levels(encoding):
    image = reading(encoding)
    back = decode_image(encode_image(image, 'png'), image.stamp_ns, 'camera')
    assert (back.height, back.width, back.stamp_ns) == (6, 9, 5)
    # The pixels may come back in another channel order (bgr8 as rgb8): the grey is the same.
    assert np.allclose(image_to_gray(back), image_to_gray(image), atol=1e-9)
    if encoding in ('mono8', 'mono16', 'rgb8', 'rgba8'):
        assert back.encoding == encoding and np.array_equal(back.data, image.data)


def test_jpeg_is_close_on_a_smooth_picture():
    rows, cols = np.mgrid[0:48, 0:64]
    picture = (rows * 2 + cols * 2).astype(np.uint8)
    image = ImageReading(stamp_ns=1, height=48, width=64, encoding='mono8', data=picture)
    data = encode_image(image, 'jpeg')
    assert compressed_format(data) == 'jpeg'
    back = decode_image(data, 1, 'camera')
    assert back.encoding == 'mono8' and back.data.shape == (48, 64)
    assert np.abs(back.data.astype(int) - picture).max() <= 4


def test_mono16_is_not_written_as_jpeg():
    with pytest.raises(ValueError, match='mono16 image cannot be written as JPEG'):
        encode_image(reading('mono16'), 'jpeg')


def png_with_size(width, height, valid_crc=True):
    """A small PNG whose header claims ``width`` x ``height`` (a decompression bomb's shape)."""
    data = bytearray(encode_image(reading('mono8', 4, 4), 'png'))
    data[16:24] = struct.pack('>II', width, height)
    if valid_crc:
        data[29:33] = struct.pack('>I', zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def jpeg_with_size(width, height):
    data = bytearray(encode_image(reading('mono8', 8, 8), 'jpeg'))
    at = data.index(b'\xff\xc0')
    data[at + 5:at + 9] = struct.pack('>HH', height, width)
    return bytes(data)


@pytest.mark.parametrize('data, message', [
    (b'', "source 'camera': the compressed image is neither JPEG nor PNG (its 0 bytes start "
          'with nothing); expected JPEG or PNG data'),
    (b'GIF89a\x01\x00', 'neither JPEG nor PNG (its 8 bytes start with 47 49 46 38'),
    (png_with_size(50_000, 50_000), "source 'camera': the PNG image is 50000x50000 pixels; "
                                    'expected at most 16777216 pixels and 16384 on a side'),
    (png_with_size(4097, 4097), 'the PNG image is 4097x4097 pixels; expected at most'),
    (jpeg_with_size(65535, 300), 'the JPEG image is 65535x300 pixels; expected at most'),
    (png_with_size(0, 4), 'the PNG image is 0x4 pixels; expected a width and height of at '
                          'least 1'),
    (png_with_size(5, 4, valid_crc=False), 'the PNG image cannot be decoded'),
    (encode_image(reading('rgb8'), 'png')[:60], 'the PNG image cannot be decoded'),
    (encode_image(reading('mono8'), 'jpeg')[:100], 'the JPEG image cannot be decoded'),
    (b'\xff\xd8\xff\xda\x00\x02', 'the JPEG data has no readable frame header'),
    (b'\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIEND', 'the PNG data has no IHDR header'),
])
def test_bad_data_is_refused_naming_the_source_and_what_was_expected(data, message):
    with pytest.raises(ObservationError) as error:
        decode_image(data, 0, "source 'camera'")
    assert message in str(error.value)
    assert str(error.value).startswith("source 'camera': ")


def test_a_decompression_bomb_is_refused_from_its_header_without_decoding():
    # A real PNG of 5000 x 5000 black pixels: 25 megapixels from a few kilobytes.
    bomb = zlib.compress(b'\x00' * (5001 * 5000), 9)
    ihdr = struct.pack('>IIBBBBB', 5000, 5000, 8, 0, 0, 0, 0)

    def chunk(kind, body):
        return struct.pack('>I', len(body)) + kind + body + \
            struct.pack('>I', zlib.crc32(kind + body))
    data = b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IDAT', bomb) + \
        chunk(b'IEND', b'')
    assert len(data) < 100_000 and 5000 * 5000 > MAX_PIXELS
    start = time.perf_counter()
    with pytest.raises(ObservationError, match='5000x5000 pixels; expected at most'):
        decode_image(data, 0, 'camera')
    assert time.perf_counter() - start < 0.5   # refused from the header, nothing inflated


def check_decoded(data: bytes) -> None:
    """Decoding either refuses with an ObservationError or gives a well-formed reading."""
    try:
        image = decode_image(data, 7, "source 'camera'")
    except ObservationError as error:
        assert str(error).startswith("source 'camera': ")
        return
    channels, dtype = IMAGE_ENCODINGS[image.encoding]
    assert image.data.dtype == dtype
    expected = (image.height, image.width) + ((channels,) if channels > 1 else ())
    assert image.data.shape == expected and 1 <= image.height * image.width <= MAX_PIXELS
    assert image.stamp_ns == 7


@given(st.binary(max_size=512))
def test_random_bytes_never_raise_anything_but_an_observation_error(data):
    check_decoded(data)
    check_decoded(b'\x89PNG\r\n\x1a\n' + data)
    check_decoded(b'\xff\xd8\xff' + data)


VALID = {fmt: encode_image(reading(encoding, 12, 10), fmt)
         for fmt, encoding in (('png', 'rgb8'), ('jpeg', 'mono8'))}


@given(st.sampled_from(sorted(VALID)),
       st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8),
       st.integers(0, 10_000), st.booleans())
def test_mutated_valid_images_are_decoded_or_refused_never_misshapen(fmt, flips, cut, insert):
    data = bytearray(VALID[fmt])
    for at, value in flips:
        data[at % len(data)] = value
    if insert:
        data[cut % len(data):cut % len(data)] = bytes(flips and [flips[0][1]] * 7)
    else:
        del data[cut % len(data):]
    check_decoded(bytes(data))


def test_an_image_source_takes_a_compressed_format_that_is_no_part_of_the_contract():
    raw = copy.deepcopy(load_spec('track_follow_camera').raw)
    raw['sources']['camera'].update(format='jpeg', topic='camera/image_raw')
    spec = parse_spec(raw)
    assert spec.sources['camera'].message_type == 'sensor_msgs/msg/CompressedImage'
    assert spec.sources['odom'].message_type == 'nav_msgs/msg/Odometry'
    # A checkpoint trained on the raw camera runs on its compressed stream, and back.
    assert spec.contract() == load_spec('track_follow_camera').contract()
    raw['sources']['camera']['format'] = 'gif'
    with pytest.raises(SpecError, match="sources.camera.format: 'gif' is not one of raw, "
                                        'jpeg, png'):
        parse_spec(raw)
    raw['sources']['camera']['format'] = 'png'
    raw['sources']['scan']['format'] = 'png'
    with pytest.raises(SpecError, match='sources.scan: unknown key.s. format'):
        parse_spec(raw)
