"""The Avro codecs registered with Faust, for keys and values, by name `avro-<Subject>`."""

from __future__ import annotations

from typing import Any

from faust.serializers import codecs

from streams.codec import AvroCodec, Codecs, default_codecs


class FaustAvroCodec(codecs.Codec):
    """Faust codec that speaks the Confluent wire format through one `AvroCodec`."""

    def __init__(self, avro: AvroCodec, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.avro = avro

    def _dumps(self, obj: Any) -> bytes:
        return self.avro.encode(obj)

    def _loads(self, s: bytes) -> Any:
        return self.avro.decode(s)


def codec_name(subject: str) -> str:
    return f"avro-{subject}"


def register_faust_codecs(all_codecs: Codecs | None = None) -> dict[str, FaustAvroCodec]:
    """Register one Faust codec per subject; topics then use `key_serializer='avro-EntityKey'`."""
    all_codecs = all_codecs or default_codecs()
    registered = {}
    for subject in all_codecs.subjects():
        codec = FaustAvroCodec(all_codecs[subject])
        codecs.register(codec_name(subject), codec)
        registered[codec_name(subject)] = codec
    return registered
