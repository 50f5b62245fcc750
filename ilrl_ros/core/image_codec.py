"""JPEG and PNG camera images (sensor_msgs/CompressedImage's data) to and from ImageReading.

Real cameras mostly publish compressed images; decoded here they become the same
``ImageReading`` a raw sensor_msgs/Image gives, so everything that takes an image takes them.
Decoding is total over any bytes: whatever is wrong (not JPEG or PNG, truncated, corrupt,
too large) is an ``ObservationError`` naming the input and what was expected. The size is
read from the header and bounded before a pixel is decoded, so a small message cannot
make the node allocate gigabytes (a decompression bomb).
"""

import io
import struct
from typing import Optional

import numpy as np

from ilrl_ros.core.observation import image_pixels, ObservationError
from ilrl_ros.core.readings import IMAGE_ENCODINGS, ImageReading

# The compressed formats read and written.
COMPRESSED_FORMATS = ('jpeg', 'png')
# The largest image decoded: 4096 x 4096 pixels (a 16-megapixel camera), at most 16384 on a
# side. At 4 bytes a pixel that is 64 MiB, the most one message can make the node allocate.
MAX_PIXELS = 4096 * 4096
MAX_SIDE = 16384
# Encoding quality of JPEG images the mock robot publishes (libjpeg's scale, 1-95).
JPEG_QUALITY = 90

_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
_JPEG_SIGNATURE = b'\xff\xd8\xff'
# JPEG start-of-frame markers (SOF0-SOF15 less DHT, JPG and DAC), which carry the size.
_JPEG_FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Pillow modes decoded as they are, and what the others are converted to first.
_ENCODING_OF_MODE = {'L': 'mono8', 'RGB': 'rgb8', 'RGBA': 'rgba8', 'I;16': 'mono16',
                     'I;16B': 'mono16', 'I;16L': 'mono16', 'I': 'mono16'}
_CONVERT_MODE = {'1': 'L', 'LA': 'L', 'La': 'L', 'P': 'RGB', 'PA': 'RGB', 'CMYK': 'RGB',
                 'YCbCr': 'RGB', 'RGBX': 'RGB', 'RGBa': 'RGBA'}


def compressed_format(data: bytes) -> Optional[str]:
    """The format of compressed image bytes by their signature: 'jpeg', 'png' or None."""
    if data.startswith(_PNG_SIGNATURE):
        return 'png'
    if data.startswith(_JPEG_SIGNATURE):
        return 'jpeg'
    return None


def _png_size(data: bytes, where: str) -> tuple:
    # The first chunk must be IHDR: length 13, then width and height as big-endian uint32.
    if len(data) < 24 or data[12:16] != b'IHDR':
        raise ObservationError(f'{where}: the PNG data has no IHDR header after its '
                               f'signature; expected a complete PNG image')
    width, height = struct.unpack('>II', data[16:24])
    return width, height


def _jpeg_size(data: bytes, where: str) -> tuple:
    # Walk the marker segments from the start of image to the first frame header.
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            break
        marker = data[at + 1]
        if marker == 0xFF:       # fill byte
            at += 1
            continue
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:   # markers without a segment
            at += 2
            continue
        if marker in (0xDA, 0xD9):   # scan or end before any frame header
            break
        length = struct.unpack('>H', data[at + 2:at + 4])[0]
        if marker in _JPEG_FRAME_MARKERS:
            if length < 7 or at + 9 > len(data):
                break
            height, width = struct.unpack('>HH', data[at + 5:at + 9])
            return width, height
        if length < 2:
            break
        at += 2 + length
    raise ObservationError(f'{where}: the JPEG data has no readable frame header before its '
                           f'image data; expected a complete JPEG image')


def _check_size(width: int, height: int, fmt: str, where: str) -> None:
    if width < 1 or height < 1:
        raise ObservationError(f'{where}: the {fmt.upper()} image is {width}x{height} pixels; '
                               f'expected a width and height of at least 1')
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise ObservationError(
            f'{where}: the {fmt.upper()} image is {width}x{height} pixels; expected at most '
            f'{MAX_PIXELS} pixels and {MAX_SIDE} on a side (it is not decoded)')


def decode_image(data: bytes, stamp_ns: int, where: str = 'image') -> ImageReading:
    """Decode JPEG or PNG bytes into an ``ImageReading`` (mono8, mono16, rgb8 or rgba8).

    The format is found from the data's signature, whatever the message's ``format`` string
    says; anything else is refused with an ``ObservationError`` naming ``where``.
    """
    data = bytes(data)
    fmt = compressed_format(data)
    if fmt is None:
        start = data[:8].hex(' ') if data else 'nothing'
        raise ObservationError(f'{where}: the compressed image is neither JPEG nor PNG (its '
                               f'{len(data)} bytes start with {start}); expected JPEG or PNG '
                               f'data')
    width, height = (_png_size if fmt == 'png' else _jpeg_size)(data, where)
    _check_size(width, height, fmt, where)
    from PIL import Image   # only nodes that read compressed images pay for the import
    try:
        with Image.open(io.BytesIO(data), formats=[fmt.upper()]) as image:
            # Pillow may read the size from another header than the one checked above.
            _check_size(*image.size, fmt, where)
            image.load()
            mode = _CONVERT_MODE.get(image.mode, image.mode)
            if mode not in _ENCODING_OF_MODE:
                raise ObservationError(f'{where}: the {fmt.upper()} image has pixel mode '
                                       f'{image.mode!r}; expected grey, RGB or RGBA pixels')
            pixels = np.asarray(image.convert(mode) if mode != image.mode else image)
    except ObservationError:
        raise
    except Exception as error:  # noqa: BLE001 - a decoder may raise anything on bad data
        raise ObservationError(f'{where}: the {fmt.upper()} image cannot be decoded '
                               f'({type(error).__name__}: {error}); expected a complete, '
                               f'valid {fmt.upper()} image') from None
    encoding = _ENCODING_OF_MODE[mode]
    if encoding == 'mono16':
        if pixels.size and (pixels.min() < 0 or pixels.max() > 65535):
            raise ObservationError(f'{where}: the PNG image has grey levels outside 0-65535; '
                                   f'expected 8 or 16 bits a pixel')
        pixels = pixels.astype(np.uint16)
    pixels = np.ascontiguousarray(pixels, dtype=IMAGE_ENCODINGS[encoding][1])
    reading = ImageReading(stamp_ns=int(stamp_ns), height=int(pixels.shape[0]),
                           width=int(pixels.shape[1]), encoding=encoding, data=pixels)
    # Whatever the decoder returned, what leaves here has the shape its header states.
    if (reading.width, reading.height) != (width, height):
        raise ObservationError(f'{where}: the {fmt.upper()} image decoded to '
                               f'{reading.width}x{reading.height} pixels, but its header says '
                               f'{width}x{height}; expected them to agree')
    image_pixels(reading, where)
    return reading


def encode_image(image: ImageReading, fmt: str) -> bytes:
    """Encode an image as JPEG or PNG (what a camera driver's compressed transport sends).

    mono16 is written as 16-bit PNG; JPEG takes 8-bit images only and drops alpha.
    """
    if fmt not in COMPRESSED_FORMATS:
        raise ValueError(f'image format {fmt!r} is not one of {", ".join(COMPRESSED_FORMATS)}')
    from PIL import Image
    pixels = image_pixels(image, 'image to encode')
    if image.encoding == 'mono16':
        if fmt == 'jpeg':
            raise ValueError('a mono16 image cannot be written as JPEG (8 bits a pixel); '
                             'expected png')
        picture = Image.fromarray(np.ascontiguousarray(pixels[:, :, 0], dtype='<u2'))
    elif image.encoding == 'mono8':
        picture = Image.fromarray(np.ascontiguousarray(pixels[:, :, 0]))
    else:
        if image.encoding.startswith('bgr'):
            pixels = pixels[:, :, [2, 1, 0, 3][:pixels.shape[2]]]
        if fmt == 'jpeg':
            pixels = pixels[:, :, :3]
        # Pillow takes (h, w, 3) uint8 as RGB and (h, w, 4) as RGBA.
        picture = Image.fromarray(np.ascontiguousarray(pixels))
    out = io.BytesIO()
    if fmt == 'jpeg':
        picture.save(out, format='JPEG', quality=JPEG_QUALITY)
    else:
        picture.save(out, format='PNG')
    return out.getvalue()
