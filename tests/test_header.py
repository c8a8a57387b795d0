"""Outlet, author and publication date from the lines under an article's title."""

import pytest

from qa.ingest.documents import load_document
from qa.ingest.header import Header, parse_date, parse_header_line


@pytest.mark.parametrize("line, expected", [
    ("VnExpress | 2024-10", Header("VnExpress", None, "2024-10")),
    ("Thanh Niên | Lê Hiệp | 2019-07", Header("Thanh Niên", "Lê Hiệp", "2019-07")),
    ("baoquocte.vn | 2021-12-15", Header("baoquocte.vn", None, "2021-12-15")),
    ("Khánh Minh |", Header(None, "Khánh Minh", None)),
    ("Thứ Sáu, 17/12/2021 14:30", Header(published="2021-12-17")),
    ("15/12/2021", Header(published="2021-12-15")),
    ("December 15, 2021", Header(published="2021-12-15")),
    ("Friday, December 17, 2021 - 14:30 GMT+7", Header(published="2021-12-17")),
    ("2021-12-15T08:00:00+07:00", Header(published="2021-12-15")),
    ("Cập nhật: 08:15 ngày 17/12/2021", Header(published="2021-12-17")),
    ("Hà Nội, ngày 15 tháng 12 năm 2021", Header(published="2021-12-15")),
    ("VnExpress International", Header(outlet="VnExpress International")),
])
def test_header_lines(line, expected):
    assert parse_header_line(line, first=True) == expected


@pytest.mark.parametrize("line", [
    "Việt Nam đang thúc đẩy triển khai ngoại giao số trong bối cảnh ngoại giao số ngày càng khẳng định vai trò.",
    "Tính đến ngày 14/12/2021, Việt Nam đã tiêm hơn 140 triệu liều vaccine.",
    "Năm 2024, GDP tăng 7,09%.",
    "31/02/2021",  # no such day
    "13/2021",
])
def test_body_lines_are_not_headers(line):
    assert parse_header_line(line, first=False) is None


def test_a_bare_outlet_only_right_under_the_title():
    assert parse_header_line("VnExpress International", first=False) is None


def test_dates_without_a_day_keep_month_precision():
    assert parse_date("tháng 12/2021") == "2021-12"
    assert parse_date("2024-10") == "2024-10"
    assert parse_date("2021") is None  # a year alone is not a date


def test_byline_row_is_read_and_not_body(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("Tiêu đề bài báo\nbaoquocte.vn | Minh Anh | 2021-12-15\n\nĐoạn đầu tiên của bài báo, nói về một sự kiện diễn ra ngày 1/1/2020.\n",
                 encoding="utf-8")
    doc = load_document(p)
    assert (doc.outlet, doc.author, doc.date) == ("baoquocte.vn", "Minh Anh", "2021-12-15")
    assert doc.body.startswith("Đoạn đầu tiên") and "baoquocte" not in doc.text


def test_a_date_in_the_body_is_not_the_publication_date(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("Tiêu đề bài báo\n\nNăm 2024, tính đến ngày 14/12/2024, thành phố đã đón 5 triệu lượt khách.\n", encoding="utf-8")
    doc = load_document(p)
    assert doc.date is None and doc.outlet is None


def test_dateline_under_the_title(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("Tiêu đề bài báo\nThứ Sáu, 17/12/2021 14:30\n\nNội dung bài báo đủ dài để là một đoạn văn của phần thân bài.\n", encoding="utf-8")
    doc = load_document(p)
    assert doc.date == "2021-12-17" and doc.body.startswith("Nội dung")
