"""Encodings (shipper.encoding): lines are found on bytes at character boundaries and
decoded alone, so offsets stay byte offsets (promise 1) and bytes that do not decode
are kept visibly (promise 6)."""

from __future__ import annotations

import codecs
import os
from pathlib import Path

import pytest

from shipper.encoding import text_encoding

TEXTS = ["사용자 로그인 성공", "用户登录成功 €", "plain ascii", "𠀀 and 𝄞 beyond the BMP"]


def _lines_of(name: str, data: bytes) -> list[str]:
    encoding = text_encoding(name)
    cut = encoding.end_of_lines(data)
    return [encoding.decode(raw) for raw in encoding.lines(data[:cut])]


class TestLines:
    @pytest.mark.parametrize(
        ("name", "texts"),
        [
            ("cp949", TEXTS[:1] + TEXTS[2:3]),
            ("euc-kr", TEXTS[:1]),
            ("gbk", ["用户登录成功"]),
            ("gb18030", TEXTS),
            ("latin-1", ["café crème", "naïve"]),
            ("utf-16-le", TEXTS),
            ("utf-16-be", TEXTS),
            ("utf-32-le", TEXTS),
        ],
    )
    def test_lines_round_trip_and_end_where_their_bytes_end(self, name, texts):
        """Each line comes back whole; the bytes up to the last newline are whole lines."""
        data = "".join(f"{text}\n" for text in texts).encode(name)
        partial = "unfinished".encode(name)
        encoding = text_encoding(name)
        assert encoding.end_of_lines(data + partial) == len(data)
        assert _lines_of(name, data + partial) == texts
        line_bytes = [len(f"{text}\n".encode(name)) for text in texts]
        raws = encoding.lines(data)
        assert [len(raw) + encoding.unit for raw in raws] == line_bytes

    def test_a_utf16_newline_byte_pair_across_two_characters_is_not_a_line_end(self):
        """U+0A41 U+0100 in UTF-16-LE is ``41 0A 00 01``: ``0A 00`` straddles two
        characters and must not cut the line."""
        text = "ਁ\u0a41\u0100ਁ"
        data = f"{text}\nnext\n".encode("utf-16-le")
        assert b"\n\x00" in data[: len(text) * 2]
        assert _lines_of("utf-16-le", data) == [text, "next"]
        assert _lines_of("utf-16-le", text.encode("utf-16-le")) == []

    def test_crlf_lines_lose_their_carriage_return_in_every_encoding(self):
        for name in ("utf-8", "cp949", "utf-16-le"):
            assert _lines_of(name, "가\r\n나\r\n".encode(name)) == ["가", "나"]

    def test_bytes_that_do_not_decode_are_kept_as_escapes(self):
        assert _lines_of("cp949", b"ok \xff\xfe end\n") == ["ok \\xff\\xfe end"]
        assert _lines_of("utf-16-le", b"a\x00\x00\xd8\n\x00") == ["a\\x00\\xd8"]


class TestByteOrder:
    @pytest.mark.parametrize("order", ["utf-16-le", "utf-16-be"])
    def test_utf16_takes_the_byte_order_of_the_files_bom(self, tmp_path: Path, order: str):
        """As a file written with ``encoding="utf-16"`` starts: a BOM, then the text; the
        BOM is not part of the first line."""
        bom = codecs.BOM_UTF16_LE if order.endswith("le") else codecs.BOM_UTF16_BE
        path = tmp_path / "app.log"
        path.write_bytes(bom + "첫 줄\n둘째 줄\n".encode(order))
        fd = os.open(path, os.O_RDONLY)
        try:
            encoding = text_encoding("utf-16").for_file(fd)
        finally:
            os.close(fd)
        assert encoding.name == order
        assert _lines_of(encoding.name, path.read_bytes()) == ["첫 줄", "둘째 줄"]

    def test_a_utf16_file_without_bom_is_read_little_endian(self, tmp_path: Path):
        path = tmp_path / "app.log"
        path.write_bytes("x\n".encode("utf-16-le"))
        fd = os.open(path, os.O_RDONLY)
        try:
            assert text_encoding("utf-16").for_file(fd).name == "utf-16-le"
        finally:
            os.close(fd)

    def test_ascii_compatible_encodings_keep_the_ascii_fast_path(self):
        """ASCII bytes mean the same text in these, so a chunk of them is decoded as
        ASCII at once; not so in UTF-16, whose ASCII text holds NUL bytes."""
        for name in ("utf-8", "cp949", "euc-kr", "gbk", "gb18030", "latin-1", "big5"):
            assert text_encoding(name).ascii_compatible, name
        for name in ("utf-16", "utf-16-le", "utf-32", "cp500"):
            assert not text_encoding(name).ascii_compatible, name

    def test_long_lines_are_cut_on_whole_code_units(self):
        assert text_encoding("utf-16-le").whole_units(1001) == 1000
        assert text_encoding("utf-32-be").whole_units(1003) == 1000
        assert text_encoding("cp949").whole_units(1001) == 1001
