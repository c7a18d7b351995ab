"""Reading CSV / CSV.gz / Parquet files into plain numpy columns.

Fast path: pyarrow's multithreaded CSV reader with explicit column types
(float32 values, dictionary-encoded ticker and timestamp text), reading only
the columns that play a role. When that fails (a value that is not a number, a
row with the wrong number of fields) a slower diagnostic read (strings, one
thread) finds every bad value and its line, so the report can name them all.
"""
from __future__ import annotations

import bz2
import codecs
import csv
import gzip
import io
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .arrowutil import fill_numpy
from .columns import VALUE_ROLES, ColumnMapping

SNIFF_BYTES = 1 << 16
DELIMITERS = (",", ";", "\t", "|")
NULL_VALUES = ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
               "1.#QNAN", "N/A", "NA", "NULL", "NaN", "n/a", "nan", "null", "None", "none"]
MAX_INVALID_EXAMPLES = 20


class ReadFailure(Exception):
    """A file that cannot be read at all; carries the issue code and texts."""

    def __init__(self, code: str, what: str, hint: str) -> None:
        super().__init__(what)
        self.code, self.what, self.hint = code, what, hint


# --------------------------------------------------------------------------- sniffing

@dataclass
class FileFormat:
    kind: str = "csv"              # csv | parquet
    compression: str | None = None  # gzip | bz2 | zstd | None
    encoding: str = "utf-8"        # a Python codec name
    bom: bool = False
    delimiter: str = ","
    header: list[str] = field(default_factory=list)
    size: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "compression": self.compression, "encoding": self.encoding,
                "bom": self.bom, "delimiter": self.delimiter, "size": self.size}


def _compression_of(head: bytes, path: str) -> str | None:
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:3] == b"BZh" and path.endswith(".bz2"):
        return "bz2"
    if head[:4] == b"\x28\xb5\x2f\xfd":
        return "zstd"
    if head[:4] == b"PK\x03\x04":
        raise ReadFailure("unsupported_format", "is a zip archive",
                          "unzip it and point data_path at the CSV inside")
    return None


def _decompressed_head(path: str, compression: str | None) -> bytes:
    if compression == "gzip":
        with gzip.open(path, "rb") as f:
            return f.read(SNIFF_BYTES)
    if compression == "bz2":
        with bz2.open(path, "rb") as f:
            return f.read(SNIFF_BYTES)
    if compression == "zstd":
        import pyarrow as pa
        with pa.input_stream(path, compression="zstd") as f:
            return f.read(SNIFF_BYTES)
    with open(path, "rb") as f:
        return f.read(SNIFF_BYTES)


def _encoding_of(head: bytes) -> tuple[str, bool]:
    """(codec, has BOM). UTF-8 first, then UTF-16 by BOM or NUL pattern, else Latin-1."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8", True
    if head.startswith(codecs.BOM_UTF16_LE) or head.startswith(codecs.BOM_UTF16_BE):
        return "utf-16", True
    sample = head[:4096]
    if len(sample) >= 4:
        if sample[1::2].count(0) > len(sample) // 4 and sample[0::2].count(0) == 0:
            return "utf-16-le", False
        if sample[0::2].count(0) > len(sample) // 4 and sample[1::2].count(0) == 0:
            return "utf-16-be", False
    cut = head.rfind(b"\n") if len(head) == SNIFF_BYTES else len(head)
    try:
        head[: cut if cut > 0 else len(head)].decode("utf-8")
        return "utf-8", False
    except UnicodeDecodeError:
        return "latin-1", False


def _header_and_delimiter(text: str) -> tuple[list[str], str]:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return [], ","
    first = lines[0]
    counts = {d: first.count(d) for d in DELIMITERS}
    delimiter = max(DELIMITERS, key=lambda d: (counts[d], d == ","))
    if counts[delimiter] == 0:
        delimiter = ","
    header = next(csv.reader([first], delimiter=delimiter))
    return header, delimiter   # unstripped: pyarrow selects columns by their exact names


def sniff(path: str) -> FileFormat:
    """Find format, compression, encoding, delimiter and header of a file."""
    if not os.path.exists(path):
        raise ReadFailure("file_not_found", "does not exist",
                          "check data_path (relative paths are relative to the working directory)")
    if os.path.isdir(path):
        raise ReadFailure("not_a_file", "is a directory", "point data_path at a CSV, CSV.gz or Parquet file")
    fmt = FileFormat(size=os.path.getsize(path))
    if fmt.size == 0:
        raise ReadFailure("empty_file", "is empty (0 bytes)", "write the data (a header line and rows) into it")
    with open(path, "rb") as f:
        raw_head = f.read(SNIFF_BYTES)
    if raw_head[:4] == b"PAR1":
        fmt.kind = "parquet"
        return _sniff_parquet(path, fmt)
    fmt.compression = _compression_of(raw_head, path)
    try:
        head = _decompressed_head(path, fmt.compression)
    except (OSError, EOFError) as exc:
        raise ReadFailure("unreadable_file", f"cannot be decompressed ({exc})",
                          "re-download the file or decompress it yourself") from None
    if not head.strip(b"\r\n\t \x00\xef\xbb\xbf\xff\xfe"):
        raise ReadFailure("empty_file", "holds no text (empty after decompression)",
                          "write the data (a header line and rows) into it")
    fmt.encoding, fmt.bom = _encoding_of(head)
    text = head.decode(fmt.encoding, errors="replace").lstrip("\ufeff")
    fmt.header, fmt.delimiter = _header_and_delimiter(text)
    if not fmt.header:
        raise ReadFailure("empty_file", "holds no header line", "the first line must name the columns")
    return fmt


def _sniff_parquet(path: str, fmt: FileFormat) -> FileFormat:
    import pyarrow.parquet as pq
    try:
        fmt.header = list(pq.read_schema(path).names)
    except Exception as exc:  # noqa: BLE001 - any pyarrow failure is a bad file
        raise ReadFailure("unreadable_file", f"is not a readable Parquet file ({exc})",
                          "re-export the Parquet file or use CSV") from None
    return fmt


# --------------------------------------------------------------------------- raw columns

@dataclass
class RawColumns:
    """The columns of a file as numpy arrays, rows in file order.

    Text columns (ticker, timestamp) stay dictionary-encoded: ``codes`` index
    into ``uniques`` (-1 for an empty cell), so timestamps are parsed once per
    distinct text and tickers never become Python strings per row.
    """

    n_rows: int
    values: np.ndarray                             # float32 [n, 6] in VALUE_ROLES order, NaN where empty
    present: set[str] = field(default_factory=set)  # value roles the file has (others are garbage)
    non_numeric: dict[str, np.ndarray] = field(default_factory=dict)   # role -> rows that are text
    non_numeric_examples: dict[str, list[str]] = field(default_factory=dict)
    decimal_comma: dict[str, np.ndarray] = field(default_factory=dict)  # role -> rows read as '1,5' -> 1.5
    ticker_codes: np.ndarray | None = None         # int32 [n], -1 = empty
    ticker_names: list[str] = field(default_factory=list)
    time_codes: np.ndarray | None = None           # int32 [n], -1 = empty
    time_uniques: Any = None                       # pyarrow array (strings or timestamps)
    invalid_rows: list[tuple[int | None, str]] = field(default_factory=list)
    n_invalid_rows: int = 0


def _dictionary_to_codes(column: Any) -> tuple[np.ndarray, Any]:
    """A (chunked) arrow column -> (int32 codes with -1 for null, arrow uniques)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not isinstance(column, pa.ChunkedArray):
        column = pa.chunked_array([column])
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    column = column.unify_dictionaries()
    if column.num_chunks == 0:
        return np.zeros(0, np.int32), pa.array([], pa.string())
    codes = np.empty(len(column), np.int32)
    indices = pa.chunked_array([chunk.indices for chunk in column.chunks])
    fill_numpy(indices, codes, _numpy_int_type(indices.type), -1)
    return codes, column.chunk(0).dictionary


def _numpy_int_type(arrow_type: Any) -> Any:
    return {8: np.int8, 16: np.int16, 32: np.int32, 64: np.int64}[arrow_type.bit_width]


def _float_column(column: Any, out: np.ndarray) -> None:
    """Arrow numeric column -> ``out`` (a float32 view), NaN for nulls."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pa.types.is_float32(column.type):
        column = pc.cast(column, pa.float32(), safe=False)
    fill_numpy(column, out, np.float32, np.nan)


def _text_to_float(column: Any, out: np.ndarray, decimal_comma: bool) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """String column -> ``out`` (float32 view).

    Returns (rows that are not numbers, rows read with a decimal comma, examples).
    Decimal commas ('1,5') are accepted only when the delimiter is not a comma.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    bad_rows: list[int] = []
    comma_rows: list[np.ndarray] = []
    examples: list[str] = []
    pos = 0
    for chunk in chunks:
        n = len(chunk)
        target = out[pos:pos + n]
        try:
            fill_numpy(pc.cast(chunk, pa.float32()), target, np.float32, np.nan)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            if decimal_comma and _try_decimal_comma(chunk, target):
                commas = pc.match_substring(chunk, ",").fill_null(False)
                comma_rows.append(pos + np.flatnonzero(np.asarray(commas.to_pylist(), bool)))
            else:
                _parse_one_by_one(chunk.to_pylist(), target, pos, bad_rows, examples)
        pos += n
    comma = np.concatenate(comma_rows) if comma_rows else np.zeros(0, np.int64)
    return np.array(bad_rows, np.int64), comma, examples


def _try_decimal_comma(chunk: Any, target: np.ndarray) -> bool:
    import pyarrow as pa
    import pyarrow.compute as pc
    try:
        fill_numpy(pc.cast(pc.replace_substring(chunk, ",", "."), pa.float32()), target, np.float32, np.nan)
        return True
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False


def _parse_one_by_one(texts: list[str | None], target: np.ndarray, pos: int, bad_rows: list[int],
                      examples: list[str]) -> None:
    """The slow path for a chunk with text in it: find each value that is not a number."""
    for i, text in enumerate(texts):
        value = _to_float_or_none(text)
        if value is None:
            target[i] = np.nan
            bad_rows.append(pos + i)
            if len(examples) < 3 and str(text) not in examples:
                examples.append(str(text))
        else:
            target[i] = value


def _to_float_or_none(text: str | None) -> float | None:
    if text is None:
        return float("nan")
    try:
        return float(text)
    except ValueError:
        return None


def _csv_options(fmt: FileFormat, mapping: ColumnMapping, typed: bool, threads: bool,
                 on_invalid: Callable[[Any], str]) -> tuple[Any, Any, Any]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    names = mapping.file_columns()
    text_type = pa.dictionary(pa.int32(), pa.string())
    types: dict[str, Any] = {}
    for role, col in mapping.roles.items():
        if role in ("ticker", "timestamp"):
            types[col] = text_type
        else:
            types[col] = pa.float32() if typed else pa.string()
    if mapping.time_column:
        types[mapping.time_column] = text_type
    read = pacsv.ReadOptions(use_threads=threads,
                             encoding="utf8" if fmt.encoding == "utf-8" else fmt.encoding)
    parse = pacsv.ParseOptions(delimiter=fmt.delimiter, invalid_row_handler=on_invalid)
    convert = pacsv.ConvertOptions(include_columns=names, column_types=types, null_values=NULL_VALUES,
                                   strings_can_be_null=True, quoted_strings_can_be_null=True)
    return read, parse, convert


def _open_csv_stream(path: str, fmt: FileFormat) -> Any:
    import pyarrow as pa
    return pa.input_stream(path, compression=fmt.compression) if fmt.compression else path


def read_csv_columns(path: str, fmt: FileFormat, mapping: ColumnMapping) -> RawColumns:
    """Read the mapped columns: a fast typed read first, a diagnostic read when it fails.

    The diagnostic read takes every column as text, so each bad value can be
    found; it runs single-threaded only when rows with a wrong field count
    exist, because only then does pyarrow report their line numbers.
    """
    import pyarrow as pa

    invalid: list[tuple[int | None, str]] = []
    counter = [0]

    def on_invalid(row: Any) -> str:
        counter[0] += 1
        if len(invalid) < MAX_INVALID_EXAMPLES:
            invalid.append((row.number, row.text))
        return "skip"

    attempts = [(True, True), (False, True), (False, False)]   # (typed, threads)
    if fmt.encoding != "utf-8":
        attempts = [(True, True), (False, False)]   # transcoded input: keep it to one slow read
    for typed, threads in attempts:
        invalid.clear()
        counter[0] = 0
        try:
            table = _read_csv(path, fmt, mapping, typed, threads, on_invalid)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeDecodeError) as exc:
            if not typed and not threads:
                raise ReadFailure("unreadable_file", f"cannot be parsed as CSV ({_first_line(exc)})",
                                  "check the delimiter, quoting and encoding of the file") from None
            continue
        if counter[0] and threads:
            continue   # rows with a wrong field count: re-read on one thread to learn their lines
        raw = _table_to_raw(table, mapping, typed, decimal_comma=fmt.delimiter != ",")
        raw.invalid_rows, raw.n_invalid_rows = list(invalid), counter[0]
        return raw
    raise AssertionError("unreachable: the last attempt returns or raises")


def _read_csv(path: str, fmt: FileFormat, mapping: ColumnMapping, typed: bool, threads: bool,
              on_invalid: Callable[[Any], str]) -> Any:
    import pyarrow.csv as pacsv
    options = _csv_options(fmt, mapping, typed=typed, threads=threads, on_invalid=on_invalid)
    return pacsv.read_csv(_open_csv_stream(path, fmt), *options)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def read_parquet_columns(path: str, mapping: ColumnMapping) -> RawColumns:
    import pyarrow.parquet as pq
    try:
        table = pq.read_table(path, columns=mapping.file_columns())
    except Exception as exc:  # noqa: BLE001 - any pyarrow failure is a bad file
        raise ReadFailure("unreadable_file", f"cannot be read as Parquet ({_first_line(exc)})",
                          "re-export the Parquet file or use CSV") from None
    return _table_to_raw(table, mapping, typed=None)


def _table_to_raw(table: Any, mapping: ColumnMapping, typed: bool | None, decimal_comma: bool = False) -> RawColumns:
    """Arrow table -> RawColumns. typed=None: decide per column from its arrow type."""
    import pyarrow as pa
    import pyarrow.compute as pc

    raw = RawColumns(n_rows=table.num_rows, values=np.empty((table.num_rows, len(VALUE_ROLES)), np.float32))
    for k, role in enumerate(VALUE_ROLES):
        col_name = mapping.roles.get(role)
        if col_name is None:
            continue
        raw.present.add(role)
        column = table.column(col_name)
        is_text = pa.types.is_string(column.type) or pa.types.is_large_string(column.type) \
            or pa.types.is_dictionary(column.type)
        if typed or (typed is None and not is_text):
            _float_column(column if not pa.types.is_boolean(column.type) else pc.cast(column, pa.float32()),
                          raw.values[:, k])
        else:
            if pa.types.is_dictionary(column.type):
                column = pc.cast(column, pa.string())
            bad, comma, examples = _text_to_float(column, raw.values[:, k], decimal_comma)
            if len(comma):
                raw.decimal_comma[role] = comma
            if len(bad):
                raw.non_numeric[role] = bad
                raw.non_numeric_examples[role] = examples
    if "ticker" in mapping.roles:
        column = table.column(mapping.roles["ticker"])
        if not (pa.types.is_dictionary(column.type) or pa.types.is_string(column.type)):
            column = pc.cast(column, pa.string())
        raw.ticker_codes, names = _dictionary_to_codes(column)
        raw.ticker_names = [str(n) for n in names.to_pylist()]
    time_col = table.column(mapping.roles["timestamp"])
    if mapping.time_column:
        date_text = pc.cast(time_col, pa.string()) if not pa.types.is_string(time_col.type) else time_col
        clock = table.column(mapping.time_column)
        clock_text = pc.cast(clock, pa.string()) if not pa.types.is_string(clock.type) else clock
        time_col = pc.binary_join_element_wise(date_text, clock_text, " ")
    raw.time_codes, raw.time_uniques = _dictionary_to_codes(time_col)
    return raw


# --------------------------------------------------------------------------- line numbers

class LineMap:
    """Maps data-row indices (in the order the reader returned them) to file lines.

    Line numbers are 1-based and the header is line 1. The reader skips blank
    lines and rows with a wrong field count; both shift later rows, so they are
    re-inserted here. Blank lines are found by a lazy scan of the file, done
    only when some issue needs line numbers. Quoted fields spanning several
    lines are not accounted for. Parquet files report 1-based row numbers.
    """

    def __init__(self, path: str, fmt: FileFormat, skipped_rows: list[int]) -> None:
        self.path, self.fmt = path, fmt
        self._skipped_logical = np.array(sorted(skipped_rows), dtype=np.int64)
        self._blank_lines: np.ndarray | None = None

    @property
    def word(self) -> str:
        return "row" if self.fmt.kind == "parquet" else "line"

    def lines(self, rows: np.ndarray | list[int]) -> list[int]:
        rows = np.asarray(rows, dtype=np.int64)
        if self.fmt.kind == "parquet":
            return [int(r) + 1 for r in rows]
        logical = _insert_skipped(rows + 2, self._skipped_logical)
        return [int(v) for v in _insert_skipped(logical, self._blank())]

    def physical(self, logical_rows: list[int]) -> list[int]:
        """File lines of rows numbered as pyarrow numbers them (blank lines not counted)."""
        if self.fmt.kind == "parquet":
            return [int(r) - 1 for r in logical_rows]
        return [int(v) for v in _insert_skipped(np.asarray(logical_rows, np.int64), self._blank())]

    def _blank(self) -> np.ndarray:
        if self._blank_lines is None:
            self._blank_lines = np.array(scan_blank_lines(self.path, self.fmt), dtype=np.int64)
        return self._blank_lines


def _insert_skipped(targets: np.ndarray, skipped: np.ndarray) -> np.ndarray:
    """The position of the target-th kept item when the (sorted) skipped positions are removed."""
    if len(skipped) == 0:
        return targets
    pos = targets.copy()
    while True:
        new = targets + np.searchsorted(skipped, pos, side="right")
        if np.array_equal(new, pos):
            return pos
        pos = new


def _open_text_stream(path: str, fmt: FileFormat) -> io.BufferedIOBase:
    if fmt.compression == "gzip":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    if fmt.compression == "bz2":
        return bz2.open(path, "rb")  # type: ignore[return-value]
    if fmt.compression == "zstd":
        import pyarrow as pa
        return pa.input_stream(path, compression="zstd")  # type: ignore[return-value]
    return open(path, "rb")


def scan_blank_lines(path: str, fmt: FileFormat, chunk_size: int = 1 << 24) -> list[int]:
    """1-based numbers of the empty lines of a CSV file (streamed, bounded memory)."""
    decoder = codecs.getincrementaldecoder(fmt.encoding)(errors="replace") \
        if fmt.encoding not in ("utf-8", "latin-1") else None
    newline: Any = "\n" if decoder else b"\n"
    pattern = re.compile("\n\r?(?=\n)" if decoder else b"\n\r?(?=\n)")
    blanks: list[int] = []
    # A virtual newline before the file makes a leading empty line match too;
    # counting it, the empty line after the newline at p is line (newlines up to p) + 1.
    carry: Any = newline
    base = 0  # newlines (the virtual one included) before buf[0]
    with _open_text_stream(path, fmt) as stream:
        while True:
            block = stream.read(chunk_size)
            if not block:
                break
            buf = carry + (decoder.decode(block) if decoder else block)
            for match in pattern.finditer(buf):
                if match.end() < len(carry):
                    continue  # seen with the previous block
                blanks.append(base + buf.count(newline, 0, match.start()) + 1)
            carry = buf[-2:]
            base += buf.count(newline) - carry.count(newline)
    return blanks
