"""Loading and cleaning articles: .txt news dumps, .md, .html; refusing bad files."""

from __future__ import annotations

import hashlib
import os
import unicodedata
from pathlib import Path

import pytest

from conftest import ARTICLES_DIR, DIGITAL_PATH, FIXTURES, MODERN_PATH
from qa.ingest.documents import DocumentError, discover, load_document, read_text
from qa.text import normalise_ws


@pytest.fixture(scope="module")
def digital():
    return load_document(DIGITAL_PATH)


@pytest.fixture(scope="module")
def modern():
    return load_document(MODERN_PATH)


def _is_nfc(s: str) -> bool:
    return unicodedata.is_normalized("NFC", s)


_SHAPE_MARKS = {"\u0302", "\u0306", "\u031b"}  # circumflex, breve, horn: precomposed in CP1258


def to_cp1258(text: str) -> bytes:
    """Encode Vietnamese as Windows-1258 does: vowel shapes precomposed, tones as combining marks.

    (Python's cp1258 codec is a plain charmap: it cannot encode NFC 'ộ' directly.)
    """
    out = bytearray()
    for ch in unicodedata.normalize("NFC", text):
        try:
            out += ch.encode("cp1258")
            continue
        except UnicodeEncodeError:
            pass
        base, *marks = unicodedata.normalize("NFD", ch)
        head = unicodedata.normalize("NFC", base + "".join(m for m in marks if m in _SHAPE_MARKS))
        out += head.encode("cp1258") + "".join(m for m in marks if m not in _SHAPE_MARKS).encode("cp1258")
    return bytes(out)


# ---------------------------------------------------------------------------
# the sample news articles


def test_title_id_source_and_sha(digital, modern):
    assert digital.id == DIGITAL_PATH.stem
    assert digital.title == "Ngoại giao số đưa các sản phẩm số của Việt Nam đến với toàn cầu"
    assert modern.title == "Xây dựng nền ngoại giao toàn diện, hiện đại trong kỷ nguyên số"
    assert digital.source == str(DIGITAL_PATH.resolve())
    for doc, path in ((digital, DIGITAL_PATH), (modern, MODERN_PATH)):
        assert doc.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        # the title line is not repeated as body text
        assert not doc.body.startswith(doc.title)


def test_byline_author_is_extracted_and_removed_from_body(digital):
    assert digital.author == "Khánh Minh"
    assert "Khánh Minh" not in digital.text  # neither the byline "Khánh Minh |" nor the signature
    assert "|" not in digital.body
    assert digital.body.startswith("Việt Nam đang thúc đẩy triển khai ngoại giao số")


def test_text_is_nfc(digital, modern):
    for doc in (digital, modern):
        assert _is_nfc(doc.text) and _is_nfc(doc.title)
        assert "\u00a0" not in doc.text  # non-breaking spaces squashed
        assert "\r" not in doc.text


def test_body_ends_where_captions_begin(modern):
    assert 0 < modern.body_end < len(modern.text)
    assert modern.text[modern.body_end : modern.body_end + 2] == "\n\n"
    assert modern.body == modern.text[: modern.body_end]
    assert modern.body.rstrip().endswith("Thứ trưởng Bộ Khoa học và Công nghệ nêu./.")


def test_glued_image_captions_go_to_captions_not_body(modern):
    caps = modern.captions
    assert len(caps) == 4
    assert caps[0] == "Quang cảnh phiên họp toàn thể hội nghị ngoại giao lần thứ 31. (Ảnh: Phương Hoa/TTXVN)"
    assert all(c.endswith("TTXVN)") for c in caps)
    assert any(c.startswith("Thứ trưởng Ngoại giao Tô Anh Dũng phát biểu tham luận") for c in caps)
    body = modern.body
    assert "Quang cảnh phiên họp" not in body
    assert "(Ảnh:" not in body
    assert "ảnh 1" not in body and "ảnh 2" not in body
    # the glued line starts with the page title; that copy is dropped, not left in the body
    assert "trong kỷ nguyên số ảnh" not in modern.text


def test_body_text_mentioning_anh_with_a_number_is_kept(tmp_path):
    p = tmp_path / "dien-thoai.txt"
    p.write_text(
        "Điện thoại mới ra mắt tại Việt Nam\n\nHải Yến |\n\n"
        "Mẫu điện thoại mới hỗ trợ quay video và chụp ảnh 4K với tốc độ 60 khung hình mỗi giây.\n\n"
        "Người dùng có thể xem ảnh 3D trên màn hình chính.\n",
        encoding="utf-8",
    )
    doc = load_document(p)
    assert doc.captions == []
    assert "chụp ảnh 4K với tốc độ 60 khung hình mỗi giây." in doc.body
    assert "xem ảnh 3D trên màn hình chính." in doc.body


def test_credits_without_brackets_or_after_the_caption_make_a_caption(tmp_path):
    # credits as outlets write them: after the caption's last sentence, after a dash, "Photo by",
    # a bracketed credit followed by a full stop; body sentences about pictures or "ảnh hưởng" stay
    p = tmp_path / "bao.txt"
    p.write_text(
        "Bão số 3 đổ bộ\n\n"
        "Bão số 3 đổ bộ vào Quảng Ninh chiều 7/9 với sức gió cấp 14.\n\n"
        "Ảnh vệ tinh cơn bão lúc 22h ngày 7/9. Ảnh: NCHMF\n\n"
        "Dự báo hướng di chuyển của bão số 3 - Ảnh: TTDBKTTVQG\n\n"
        "Ngôi nhà của gia đình bà Xê bị đổ sập do bão. (Ảnh: Ngô Linh).\n\n"
        "Nguyen Van Cong (R) faces Lobreguito Alvin, December 10, 2019. Photo by VnExpress/Quang Huy.\n\n"
        "Ảnh hưởng của bão khiến 3 người bị thương. Ông cho biết ảnh chụp vệ tinh rất rõ.\n\n"
        "The minister said the photo by Reuters was taken on Sunday.\n",
        encoding="utf-8",
    )
    doc = load_document(p)
    assert [c.split()[0] for c in doc.captions] == ["Ảnh", "Dự", "Ngôi", "Nguyen"]
    assert "Ảnh hưởng của bão khiến 3 người bị thương." in doc.body
    assert "the photo by Reuters was taken on Sunday." in doc.body
    assert "NCHMF" not in doc.body and "Photo by" not in doc.body


def test_caption_text_is_not_lost(modern):
    # every caption from the raw file survives exactly once, in the caption region
    raw = MODERN_PATH.read_text(encoding="utf-8")
    for cap in ("Lê Công Thành tham luận về vấn đề biến đổi khí hậu", "Lê Xuân Định tham luận về ngoại giao khoa học"):
        assert cap in raw
        assert modern.text.count(cap) == 1
        assert modern.text.index(cap) > modern.body_end


def test_bracketed_related_link_line_is_dropped(modern):
    raw = MODERN_PATH.read_text(encoding="utf-8")
    assert "[Xây dựng ngành ngoại giao chuyên nghiệp, toàn diện, hiện đại]" in raw
    assert "Xây dựng ngành ngoại giao chuyên nghiệp" not in modern.text
    assert "[" not in modern.text
    # the paragraph after the link is kept
    assert "Để đáp ứng yêu cầu nhiệm vụ, Bộ Ngoại giao mong muốn" in modern.body


def test_source_credit_and_teaser_blocks_are_dropped(digital, modern):
    assert "TIN LIÊN QUAN" in DIGITAL_PATH.read_text(encoding="utf-8")
    assert "Tin cùng chuyên mục" in MODERN_PATH.read_text(encoding="utf-8")
    for doc in (digital, modern):
        for teaser in (
            "TIN LIÊN QUAN",
            "Tin cùng chuyên mục",
            "Kỳ vọng ở cửa khẩu tỉ USD",
            "Mục tiêu tăng trưởng GDP",
            "Cảnh giác trước những luận điệu",
            "Vương Trần",
            "N.Hùng",
            "(TTXVN/Vietnam+)",
        ):
            assert teaser not in doc.text, (doc.id, teaser)
    # the last real paragraph of the short article is still there
    assert digital.body.rstrip().endswith("phục vụ giai đoạn phát triển mới của đất nước.")


def test_paragraphs_are_preserved(digital):
    paras = digital.body.split("\n\n")
    assert len(paras) >= 10
    assert all(p == p.strip() and p for p in paras)
    assert all("\n" not in p for p in paras)


# ---------------------------------------------------------------------------
# other formats


def test_html_article_is_extracted_without_boilerplate():
    path = FIXTURES / "ha-noi-pho-di-bo.html"
    doc = load_document(path)
    assert doc.id == "ha-noi-pho-di-bo"
    # og:title, not the "<title> | site name" string
    assert doc.title == "Hà Nội mở rộng không gian đi bộ quanh hồ Hoàn Kiếm"
    assert doc.author == "Ngọc Lan"
    assert doc.date == "2023-10-05"
    assert "lượng khách đến khu vực này tăng khoảng 20%" in doc.body
    assert "Các bãi trông giữ xe tạm thời được bố trí" in doc.body
    for boiler in ("Đăng nhập", "Trang chủ", "Bản quyền", "Đọc nhiều nhất", "Giá vàng", "Chia sẻ Facebook", "dataLayer", "<p>"):
        assert boiler not in doc.text, boiler
    assert doc.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert _is_nfc(doc.text)


def test_html_title_is_not_repeated_in_body():
    doc = load_document(FIXTURES / "ha-noi-pho-di-bo.html")
    assert not doc.body.startswith(doc.title)
    assert doc.body.startswith("Từ tháng 10, thành phố Hà Nội")


def test_html_title_falls_back_to_title_tag(tmp_path):
    html = (FIXTURES / "ha-noi-pho-di-bo.html").read_text(encoding="utf-8")
    html = html.replace('<meta property="og:title" content="Hà Nội mở rộng không gian đi bộ quanh hồ Hoàn Kiếm">', "")
    html = html.replace("Hà Nội mở rộng không gian đi bộ quanh hồ Hoàn Kiếm | Báo Tin Tức Mẫu", "Phố đi bộ Hoàn Kiếm mở rộng")
    html = html.replace('<h1 class="article-title">Hà Nội mở rộng không gian đi bộ quanh hồ Hoàn Kiếm</h1>', "")
    path = tmp_path / "page.htm"
    path.write_text(html, encoding="utf-8")
    doc = load_document(path)
    assert doc.title == "Phố đi bộ Hoàn Kiếm mở rộng"
    assert "tăng khoảng 20%" in doc.body


def test_markdown_file():
    path = FIXTURES / "le-hoi-hoa-da-lat.md"
    doc = load_document(path)
    assert doc.title == "Đà Lạt chuẩn bị lễ hội hoa lần thứ 10"  # '# ' stripped
    assert doc.author == "Thu Hà"
    # "sẽ diễn ra từ ngày 20/12/2024" is the festival's date, not the article's
    assert doc.date is None
    assert doc.body.startswith("Ủy ban nhân dân tỉnh Lâm Đồng")
    assert "500.000 lượt khách" in doc.body
    assert "hạn chế sử dụng đồ nhựa" in doc.body
    assert "Đà Lạt đón lượng khách kỷ lục" not in doc.text  # [bracketed link]
    assert "Giá phòng khách sạn" not in doc.text  # after "Xem thêm:"
    assert "#" not in doc.text


def test_nfd_input_is_normalised_to_nfc(tmp_path):
    nfc_text = DIGITAL_PATH.read_text(encoding="utf-8")
    nfd_text = unicodedata.normalize("NFD", nfc_text)
    assert nfd_text != nfc_text
    path = tmp_path / "nfd.txt"
    path.write_bytes(nfd_text.encode("utf-8"))
    doc = load_document(path)
    ref = load_document(DIGITAL_PATH)
    assert _is_nfc(doc.text) and _is_nfc(doc.title) and _is_nfc(doc.author)
    assert doc.text == ref.text
    assert doc.title == ref.title
    assert doc.author == "Khánh Minh"
    # the hash is of the file's bytes, so it differs from the NFC file's
    assert doc.sha256 == hashlib.sha256(nfd_text.encode("utf-8")).hexdigest() != ref.sha256


def test_utf8_bom_and_crlf(tmp_path):
    raw = DIGITAL_PATH.read_text(encoding="utf-8").replace("\n", "\r\n")
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbf" + raw.encode("utf-8"))
    doc = load_document(path)
    ref = load_document(DIGITAL_PATH)
    assert doc.title == ref.title  # no BOM glued to the title
    assert doc.text == ref.text


# ---------------------------------------------------------------------------
# files that cannot be indexed: a DocumentError that says why


def test_empty_file(tmp_path):
    for name, data in (("empty.txt", b""), ("blank.txt", b"  \n\n \t\n")):
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(DocumentError, match="empty"):
            load_document(p)


def test_binary_file(tmp_path):
    p = tmp_path / "photo.txt"
    p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00\x00\x00\x01\x00\x08\x06\x00\x00\x00" + bytes(range(256)) * 4)
    with pytest.raises(DocumentError, match="binary"):
        load_document(p)


def test_windows_1258_file_says_not_utf8(tmp_path):
    p = tmp_path / "legacy.txt"
    text = "Hà Nội mở rộng phố đi bộ\n\nThành phố Hà Nội chính thức mở rộng không gian đi bộ quanh hồ Hoàn Kiếm."
    data = to_cp1258(text)
    assert unicodedata.normalize("NFC", data.decode("cp1258")) == text  # really Windows-1258
    p.write_bytes(data)
    with pytest.raises(DocumentError) as info:
        load_document(p)
    msg = str(info.value)
    assert "UTF-8" in msg
    assert "1258" in msg  # names the likely encoding
    assert "iconv" in msg  # and how to convert


def test_unsupported_suffix(tmp_path):
    p = tmp_path / "report.pdf"
    p.write_bytes(b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n")
    with pytest.raises(DocumentError, match=r"unsupported file type '\.pdf'"):
        load_document(p)


def test_directory_named_txt_is_unreadable(tmp_path):
    d = tmp_path / "folder.txt"
    d.mkdir()
    with pytest.raises(DocumentError, match="unreadable"):
        load_document(d)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can read a chmod-000 file")
def test_permission_denied(tmp_path):
    p = tmp_path / "secret.txt"
    p.write_text("Tiêu đề\n\nNội dung bài báo.", encoding="utf-8")
    p.chmod(0)
    try:
        with pytest.raises(DocumentError, match="permission denied"):
            load_document(p)
    finally:
        p.chmod(0o644)


def test_only_boilerplate_left(tmp_path):
    p = tmp_path / "teaser-only.txt"
    p.write_text("Tiêu đề bài viết\n\nTIN LIÊN QUAN\n\nMột bài khác hoàn toàn\n", encoding="utf-8")
    with pytest.raises(DocumentError, match="no article text"):
        load_document(p)


def test_read_text_returns_bytes_for_hashing(tmp_path):
    p = tmp_path / "a.txt"
    p.write_bytes("Tiêu đề\n\nNội dung.".encode("utf-8"))
    text, data = read_text(p)
    assert text == "Tiêu đề\n\nNội dung."
    assert data == p.read_bytes()


# ---------------------------------------------------------------------------
# discovery


def test_discover_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "a.txt").write_text("x", encoding="utf-8")
    (tmp_path / "sub" / "b.HTML").write_text("x", encoding="utf-8")
    (tmp_path / "sub" / "c.pdf").write_bytes(b"%PDF")
    (tmp_path / ".hidden" / "d.txt").write_text("x", encoding="utf-8")
    (tmp_path / ".e.txt").write_text("x", encoding="utf-8")
    files, skipped = discover([tmp_path, tmp_path / "a.txt", tmp_path / "missing.txt"])
    assert sorted(f.name for f in files) == ["a.txt", "b.HTML"]  # a.txt once, hidden ones ignored
    reasons = {Path(p).name: why for p, why in skipped}
    assert "unsupported" in reasons["c.pdf"]
    assert "no such file" in reasons["missing.txt"]
    assert len(skipped) == 2


def test_discover_sample_articles():
    files, skipped = discover([ARTICLES_DIR])
    assert sorted(f.name for f in files) == sorted(p.name for p in ARTICLES_DIR.glob("*.txt"))
    assert not skipped


def test_whitespace_normalised_body_has_no_double_spaces(modern):
    for para in modern.text.split("\n\n"):
        assert para == normalise_ws(para)


def test_inline_caption_credit_and_dateline_of_english_editions(tmp_path):
    # Việt Nam News / VNA open the story with caption, credit and dateline on one line: the
    # caption and credit go to the captions, the story (from its dateline) stays body
    p = tmp_path / "doses.txt"
    p.write_text(
        "Record day for vaccinations\n\n"
        "Nurses give 900,000 doses in the capital. — VNA/VNS Photo Văn Điệp HÀ NỘI — The country gave 1.2 million doses "
        "on Monday, the ministry said.\n\n"
        "Officials at the briefing — Photo courtesy of the ministry HCM CITY — The city will open ten more sites.\n\n"
        "The minister — in HÀ NỘI — said the photo was taken on Monday.\n",
        encoding="utf-8",
    )
    doc = load_document(p)
    assert doc.captions == ["Nurses give 900,000 doses in the capital. — VNA/VNS Photo Văn Điệp",
                            "Officials at the briefing — Photo courtesy of the ministry"]
    assert doc.body.startswith("HÀ NỘI — The country gave 1.2 million doses on Monday, the ministry said.")
    assert "\nHCM CITY — The city will open ten more sites." in doc.body
    assert "The minister — in HÀ NỘI — said the photo was taken on Monday." in doc.body
    assert "900,000" not in doc.body and "Photo" not in doc.body
