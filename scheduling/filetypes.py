"""What an uploaded meeting document really is, judged by its content, not its name.

For :mod:`scheduling.materials`. Accepted: PDF, Office Open XML (docx, xlsx, pptx) and
OpenDocument (odt, ods, odp). The ``filetype`` library names the content from its magic
bytes (``%PDF-``, a ZIP whose entries say OOXML or OpenDocument, or something else such as
a Windows executable); then the structure is checked with :mod:`zipfile` (an OOXML package
must hold ``[Content_Types].xml`` and its main part, an OpenDocument its ``mimetype``
entry), and the file name's extension must agree with the content. Macro-enabled Office
files (docm, xlsm, pptm) are refused: their content types say so.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath

import filetype

from scheduling.errors import MaterialRefused


@dataclass(frozen=True, slots=True)
class DocumentType:
    extension: str
    mime: str
    main_part: str | None  # the entry an OOXML package must have


_OOXML = "application/vnd.openxmlformats-officedocument."
_ODF = "application/vnd.oasis.opendocument."
TYPES = {
    t.extension: t
    for t in (
        DocumentType("pdf", "application/pdf", None),
        DocumentType("docx", _OOXML + "wordprocessingml.document", "word/document.xml"),
        DocumentType("xlsx", _OOXML + "spreadsheetml.sheet", "xl/workbook.xml"),
        DocumentType("pptx", _OOXML + "presentationml.presentation", "ppt/presentation.xml"),
        DocumentType("odt", _ODF + "text", None),
        DocumentType("ods", _ODF + "spreadsheet", None),
        DocumentType("odp", _ODF + "presentation", None),
    )
}
_MACROS = b"macroEnabled"
_MAX_ENTRIES = 10_000


def _refuse(message: str) -> MaterialRefused:
    return MaterialRefused(message, fields={"file": message})


def extension_of(filename: str) -> str:
    return PurePosixPath(filename.replace("\\", "/")).suffix.lower().lstrip(".")


def identify(filename: str, head: bytes, data: bytes) -> DocumentType:
    """The document's type, or :class:`MaterialRefused` saying why it is not accepted."""
    if not data:
        raise MaterialRefused("the file is empty", code="material_empty", fields={"file": "empty"})
    ext = extension_of(filename)
    wanted = TYPES.get(ext)
    if wanted is None:
        raise _refuse(f"only {', '.join(sorted(TYPES))} files are accepted, not .{ext or '?'}")
    if ext == "pdf":
        if not data.startswith(b"%PDF-"):
            raise _refuse(f"the content is not a PDF ({_named(head)})")
        return wanted
    if not data.startswith(b"PK\x03\x04"):
        raise _refuse(f"the content is not a .{ext} document ({_named(head)})")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = archive.namelist()
    except (zipfile.BadZipFile, ValueError):
        raise _refuse(f"the .{ext} file is damaged (not a readable ZIP package)") from None
    if len(names) > _MAX_ENTRIES:
        raise _refuse("the package has too many entries")
    with archive:
        if wanted.mime.startswith(_OOXML):
            _check_ooxml(archive, set(names), wanted)
        else:
            _check_odf(archive, wanted)
    return wanted


def _named(head: bytes) -> str:
    kind = filetype.guess(head)
    if kind is not None:
        return f"it looks like {kind.mime}"
    if head.lstrip()[:1] == b"<":
        return "it looks like HTML or XML text"
    return "unknown content"


def _check_ooxml(archive: zipfile.ZipFile, names: set[str], wanted: DocumentType) -> None:
    if "[Content_Types].xml" not in names or wanted.main_part not in names:
        raise _refuse(f"the content is not a .{wanted.extension} document")
    info = archive.getinfo("[Content_Types].xml")
    if info.file_size > 1_000_000:
        raise _refuse("the package's [Content_Types].xml is too large")
    types = archive.read(info)
    if _MACROS.lower() in types.lower():
        raise _refuse("macro-enabled Office files are not accepted")
    if wanted.mime.encode() not in types:
        raise _refuse(f"the content is not a .{wanted.extension} document")


def _check_odf(archive: zipfile.ZipFile, wanted: DocumentType) -> None:
    try:
        info = archive.getinfo("mimetype")
    except KeyError:
        raise _refuse(f"the content is not a .{wanted.extension} document") from None
    if info.file_size > 200 or archive.read(info).strip() != wanted.mime.encode():
        raise _refuse(f"the content is not a .{wanted.extension} document")
