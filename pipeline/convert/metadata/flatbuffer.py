"""The .tflite container: unpack and repack a model, the metadata buffer, files packed after the flatbuffer."""
from __future__ import annotations

import io
import zipfile

import flatbuffers
from ai_edge_litert import schema_py_generated as tfl

from mobilenet_edge.pipeline.errors import PipelineError

METADATA_NAME = "TFLITE_METADATA"


METADATA_IDENTIFIER = b"M001"  # file_identifier of metadata_schema.fbs


# The converter leaves weight buffers 4-byte aligned; the flatbuffer object API would repack them at
# 1-byte alignment, so they are placed on 16-byte boundaries instead (float/int32 reads stay aligned).
BUFFER_ALIGNMENT = 16


_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed, so the same inputs give the same sha256


def strip_metadata(model: bytes) -> bytes:
    """`model` without TFLITE_METADATA and packed files, repacked the same way `add_metadata` packs.

    Two conversions of the same weights whose metadata differs (say, in provenance) compare equal this way.
    """
    flat = unpack(model)
    for i, entry in enumerate(flat.metadata or []):
        if entry.name.decode() == METADATA_NAME:
            del flat.metadata[i]
            if entry.buffer == len(flat.buffers) - 1:
                flat.buffers.pop()
            else:  # keep the other buffers' indices
                flat.buffers[entry.buffer] = tfl.BufferT()
            break
    return pack(flat)


def metadata_buffer(model: bytes) -> bytes | None:
    """The raw ModelMetadata flatbuffer of a .tflite, or None without metadata."""
    root = tfl.Model.GetRootAs(model, 0)
    for i in range(root.MetadataLength()):
        if root.Metadata(i).Name() == METADATA_NAME.encode():
            return root.Buffers(root.Metadata(i).Buffer()).DataAsNumpy().tobytes()
    return None


class _AlignedBufferT(tfl.BufferT):
    """A model buffer whose data starts on a BUFFER_ALIGNMENT boundary of the finished file."""

    def Pack(self, builder):
        data = None
        if self.data is not None:
            raw = bytes(self.data)
            builder.Prep(BUFFER_ALIGNMENT, len(raw))  # the vector's first byte lands on the boundary
            data = builder.CreateByteVector(raw)
        tfl.BufferStart(builder)
        if data is not None:
            tfl.BufferAddData(builder, data)
        tfl.BufferAddOffset(builder, self.offset)
        tfl.BufferAddSize(builder, self.size)
        return tfl.BufferEnd(builder)


def unpack(model: bytes) -> tfl.ModelT:
    if len(model) < 8 or model[4:8] != b"TFL3":
        raise PipelineError(f"expected .tflite bytes (flatbuffer identifier TFL3), received {bytes(model[4:8])!r}")
    flat = tfl.ModelT.InitFromPackedBuf(model, 0)
    if any(b.offset for b in flat.buffers or []):
        # Weights stored after the flatbuffer (models > 2 GB) would move when the flatbuffer grows.
        raise PipelineError("expected a .tflite with its weights inside the flatbuffer, received external buffers")
    return flat


def pack(flat: tfl.ModelT) -> bytes:
    flat.buffers = [_AlignedBufferT(b.data, b.offset, b.size) for b in flat.buffers]
    builder = flatbuffers.Builder(1 << 20)
    builder.Finish(flat.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def set_metadata_buffer(flat: tfl.ModelT, data: bytes) -> None:
    buffer = tfl.BufferT()
    buffer.data = data
    for entry in flat.metadata or []:
        if entry.name.decode() == METADATA_NAME:
            flat.buffers[entry.buffer] = buffer
            return
    flat.buffers.append(buffer)
    entry = tfl.MetadataT()
    entry.name, entry.buffer = METADATA_NAME, len(flat.buffers) - 1
    flat.metadata = [*(flat.metadata or []), entry]


def append_files(model: bytes, files: dict[str, bytes]) -> bytes:
    """Append `files` as a stored (uncompressed) zip after the flatbuffer, as the populator does."""
    out = io.BytesIO(model)
    out.seek(0, io.SEEK_END)
    with zipfile.ZipFile(out, "a") as archive:
        for name, data in files.items():
            entry = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            entry.external_attr = 0o644 << 16
            archive.writestr(entry, data)
    return out.getvalue()


def packed_files(model: bytes) -> dict[str, bytes]:
    try:
        with zipfile.ZipFile(io.BytesIO(model)) as archive:
            return {name: archive.read(name) for name in archive.namelist()}
    except (zipfile.BadZipFile, EOFError, ValueError):  # no archive (weights may even look like a broken one)
        return {}


def enum_name(enum, value) -> str:
    return next((k for k, v in vars(enum).items() if v == value and not k.startswith("_")), str(value))
