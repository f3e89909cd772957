"""A `VectorStore` on Milvus: dense search and BM25 full-text search in one Milvus collection
(``[store] store_backend = "milvus"``), for corpora one process should not hold in RAM.

Rows stay what `Index` expects (row i = chunk i); in Milvus each chunk is an entity whose primary
key is a hash of its chunk id and text, so re-ingesting an unchanged document writes nothing new.
The row -> key map is a small file of the index version (``milvus_keys.npy``, checksummed like
every file there), and the manifest records the collection, its row count and a sample of vector
hashes: on load they are checked against the collection, the Milvus counterpart of FAISS's file
checksums.

Writes are crash-safe in the same way as a FAISS save: new entities are upserted before the new
version is switched to, and entities of removed or replaced chunks are deleted only after the
switch (`committed`). A process killed in between leaves extra entities that no version refers
to: searches skip keys they do not know (they over-fetch for that), and `qabot ingest --rebuild`
(a new collection's worth of keys) or dropping the collection clears them. The same skip lets a
`qabot serve` that loaded an older version keep answering while an ingest writes a newer one.

Each entity also holds its chunk's record (`ChunkRecord` as JSON, field ``record``), so the bot
keeps no chunk texts in RAM: `milvus_chunks.py` fetches records by key, in batches, through a
bounded cache.

Keyword search: the entity's text field holds the chunk's BM25 tokens exactly as `keyword.py`
makes them (stemmed, stop words out), and Milvus's built-in BM25 function scores them with the
same k1 and b as bm25s. So BM25 statistics live in Milvus, and the ranking equals bm25s's.
milvus-lite 3.2 returns BM25 scores negated and multiplied by (k1 + 1): `keyword_search` undoes
that, so the scores are bm25s's too (measured: docs/scale-out.md).

pymilvus is imported only here, and this module only when the backend is "milvus".
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from .errors import IndexCorruptError, IndexMismatchError, QabotError
from .storage import REBUILD_HINT
from .vectors import StoreCapabilities

if TYPE_CHECKING:
    from .collections import Scope

log = logging.getLogger(__name__)

BACKEND = "milvus"
KEYS_FILE = "milvus_keys.npy"
INDEX_TYPES = ("FLAT", "HNSW", "IVF_FLAT", "IVF_SQ8")
# bm25s's defaults (method "lucene"): the same BM25 as the FAISS backend's keyword index.
BM25_K1 = 1.5
BM25_B = 0.75
WRITE_BATCH = 2000  # entities a request (well under gRPC's 64 MB message limit)
QUERY_BATCH = 1000  # keys in one "pk in [...]" filter
SAMPLE_VECTORS = 32  # vectors hashed into the manifest and re-checked on load
SAMPLE_SEED = 20_240
MAX_TEXT = 65_535  # Milvus's VARCHAR limit (bytes)
HNSW_PARAMS = {"M": 16, "efConstruction": 200}
HNSW_EF = 128
MAX_COLLECTIONS = 64  # collections a chunk may belong to (the array field's capacity)

_clients: dict[str, object] = {}


class MilvusUnavailable(QabotError):
    """Milvus cannot be reached or pymilvus is missing (one line, what to do)."""


@dataclass(frozen=True)
class MilvusConfig:
    """Where the collection lives: `uri` is http(s)://host:port, or a milvus-lite file (relative:
    inside the index folder)."""

    uri: str
    collection: str
    index_type: str = "FLAT"

    def resolved(self, index_dir: Path) -> str:
        if self.uri.startswith(("http://", "https://", "tcp://")):
            return self.uri
        path = Path(self.uri).expanduser()
        return str(path if path.is_absolute() else Path(index_dir).resolve() / path)


def client_for(uri: str):
    """One MilvusClient per URI in a process (milvus-lite allows one server per file)."""
    if uri not in _clients:
        try:
            from pymilvus import MilvusClient
        except ImportError:
            raise MilvusUnavailable('store_backend is "milvus" but pymilvus is not installed; '
                                    "install qabot[scale]") from None
        if not uri.startswith(("http://", "https://", "tcp://")):
            Path(uri).parent.mkdir(parents=True, exist_ok=True)
            # milvus-lite serves gRPC in this process and logs every call it does not implement
            # (pymilvus probes AllocTimestamp) as an ERROR with a traceback: noise, not a fault.
            logging.getLogger("grpc._server").setLevel(logging.CRITICAL)
        try:
            _clients[uri] = MilvusClient(uri)
        except Exception as exc:
            raise MilvusUnavailable(f"cannot reach Milvus at {uri.split('@')[-1]} ({type(exc).__name__})") from None
    return _clients[uri]


def entity_key(chunk_id: str, text: str) -> int:
    """The primary key of a chunk's entity: stable for the same chunk id and text (63 bits).
    `text` is the embedded text plus the record's JSON, so an entity never changes under a key
    (a live older version may be reading it while an ingest writes)."""
    digest = hashlib.blake2b(f"{chunk_id}\0{text}".encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def vector_hash(vector: np.ndarray) -> str:
    return hashlib.sha256(np.asarray(vector, dtype=np.float32).tobytes()).hexdigest()[:16]


def create_collection(client, config: MilvusConfig, dimension: int) -> None:
    """A new collection: key, vector, BM25 text and its sparse vector, the record, the collections."""
    from pymilvus import DataType, Function, FunctionType, MilvusClient

    name = config.collection
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("pk", DataType.INT64, is_primary=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=dimension)
    schema.add_field("text", DataType.VARCHAR, max_length=MAX_TEXT, enable_analyzer=True,
                     analyzer_params={"tokenizer": "standard"})
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_field("record", DataType.VARCHAR, max_length=MAX_TEXT)  # the ChunkRecord, JSON
    # The document's collections (embeddings/collections.py), filtered on the server.
    schema.add_field("collections", DataType.ARRAY, element_type=DataType.VARCHAR,
                     max_capacity=MAX_COLLECTIONS, max_length=64)
    schema.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["text"],
                                 output_field_names=["sparse"]))
    params = client.prepare_index_params()
    dense = {"M": HNSW_PARAMS["M"], "efConstruction": HNSW_PARAMS["efConstruction"]} \
        if config.index_type == "HNSW" else {"nlist": 1024} if config.index_type.startswith("IVF") else {}
    params.add_index("vec", index_type=config.index_type, metric_type="IP", params=dense)
    params.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                     params={"bm25_k1": BM25_K1, "bm25_b": BM25_B})
    # Strong consistency: a search right after an upsert sees it (ingest, then answer).
    client.create_collection(name, schema=schema, index_params=params, consistency_level="Strong")


class MilvusStore:
    """Vectors and BM25 tokens of the index's rows in one Milvus collection."""

    capabilities = StoreCapabilities(BACKEND, chunk_records=True, hybrid_search=True, consistency_check=True,
                                     filters_collections=True)

    def __init__(self, config: MilvusConfig, index_dir: Path, dimension: int, keys: Sequence[int] = ()) -> None:
        self.config = config
        self.dimension = dimension
        self.client = client_for(config.resolved(index_dir))
        # Row -> key (int64) and, built on first look-up, the keys sorted with their rows: 16 bytes
        # a row, where a list and a dict of Python ints took about 130.
        self._keys = np.asarray(keys, dtype=np.int64).reshape(-1)
        self._by_key: tuple[np.ndarray, np.ndarray] | None = None
        self._garbage: set[int] = set()  # keys of removed rows, deleted after the next switch
        self._has_collections = True  # False: a collection made before documents had collections
        self._ensure_collection()

    # --- the collection -----------------------------------------------------------------------

    def _ensure_collection(self) -> None:
        name = self.config.collection
        if self.client.has_collection(name):
            fields = {f["name"]: f for f in self.client.describe_collection(name)["fields"]}
            dim = int((fields.get("vec") or {}).get("params", {}).get("dim", -1))
            if dim != self.dimension:
                raise IndexCorruptError(f"Milvus collection {name!r} holds {dim}-d vectors, the index "
                                        f"{self.dimension}-d; {REBUILD_HINT} (or set another collection)")
            if "record" not in fields:
                raise IndexMismatchError(f"Milvus collection {name!r} predates chunk records in Milvus: drop it "
                                         f"or set another collection, then {REBUILD_HINT}")
            self._has_collections = "collections" in fields
            self.client.load_collection(name)
            return
        create_collection(self.client, self.config, self.dimension)

    # --- VectorStore ------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, vectors: np.ndarray) -> None:
        raise TypeError("a Milvus store needs each chunk's id and text: use add_chunks")

    def add_chunks(self, vectors: np.ndarray, chunk_ids: Sequence[str], texts: Sequence[str],
                   records: Sequence[str] | None = None,
                   collections: Sequence[Sequence[str]] | None = None) -> list[list[str]]:
        """Append rows: upsert one entity a chunk (vector, BM25 tokens of `texts`, the record's
        JSON from `records`, its `collections`). Returns each chunk's BM25 tokens (for the term
        statistics)."""
        from .keyword import tokenize

        vectors = np.asarray(vectors, dtype=np.float32).reshape(-1, self.dimension)
        records = list(records) if records is not None else [""] * len(texts)
        owned = [list(c) for c in collections] if collections is not None else [["default"]] * len(texts)
        too_long = [c for c, r in zip(chunk_ids, records) if len(r.encode("utf-8")) > MAX_TEXT]
        if too_long:
            raise ValueError(f"chunk {too_long[0]} is over Milvus's {MAX_TEXT}-byte text limit")
        keys = [entity_key(c, f"{t}\0{r}") for c, t, r in zip(chunk_ids, texts, records)]
        every: list[list[str]] = []
        for start in range(0, len(keys), WRITE_BATCH):
            part = slice(start, start + WRITE_BATCH)
            tokens = tokenize(list(texts[part]), fold=False)
            every.extend(tokens)
            rows = [{"pk": k, "vec": v.tolist(), "text": " ".join(t)[:MAX_TEXT], "record": r,
                     **({"collections": c} if self._has_collections else {})}
                    for k, v, t, r, c in zip(keys[part], vectors[part], tokens, records[part], owned[part])]
            self.client.upsert(self.config.collection, rows)
        self._garbage.difference_update(keys)
        self._keys = np.concatenate([self._keys, np.asarray(keys, dtype=np.int64)])
        self._by_key = None
        return every

    def fetch(self, rows: Sequence[int], field: str) -> list:
        """One stored field (``record``, ``text``, ``vec``) of each of `rows`, in their order,
        QUERY_BATCH keys a request."""
        keys = [int(self._keys[int(r)]) for r in rows]
        found: dict[int, object] = {}
        for start in range(0, len(keys), QUERY_BATCH):
            part = keys[start:start + QUERY_BATCH]
            for entity in self.client.query(self.config.collection, ids=part, output_fields=[field]):
                found[int(entity["pk"])] = entity[field]
        missing = [k for k in keys if k not in found]
        if missing:
            raise IndexCorruptError(f"Milvus collection {self.config.collection!r} lacks {len(missing)} chunk(s) "
                                    f"of the index; {REBUILD_HINT}")
        return [found[k] for k in keys]

    def key(self, row: int) -> int:
        return int(self._keys[row])

    def row_of(self, key: int) -> int | None:
        """The row of an entity key, None for a key this version does not know."""
        if self._by_key is None:
            order = np.argsort(self._keys, kind="stable")
            self._by_key = (self._keys[order], order)
        keys, order = self._by_key
        at = int(np.searchsorted(keys, key))
        return int(order[at]) if at < len(keys) and keys[at] == key else None

    def remove(self, rows: Sequence[int]) -> None:
        gone = {int(r) for r in rows}
        if not gone:
            return
        self._garbage.update(int(self._keys[r]) for r in gone)
        keep = np.ones(len(self._keys), dtype=bool)
        keep[sorted(gone)] = False
        self._keys = self._keys[keep]
        self._by_key = None
        # A chunk removed and added again unchanged is not garbage.
        self._garbage = {k for k in self._garbage if self.row_of(k) is None}

    def _limit(self, k: int) -> int:
        return min(16_384, 2 * k + 16)  # over-fetch: entities no version of ours knows are skipped

    def _filter(self, scope: "Scope | None") -> str:
        """The server-side filter expression of a search in `scope`'s collections ("" for all)."""
        if scope is None:
            return ""
        if not self._has_collections:
            raise IndexMismatchError(f"Milvus collection {self.config.collection!r} predates document collections, "
                                     f"so it cannot be searched by collection; {REBUILD_HINT}")
        from .collections import milvus_filter

        return milvus_filter(scope.names)

    def search(self, vector: np.ndarray, k: int, scope: "Scope | None" = None) -> tuple[np.ndarray, np.ndarray]:
        params = {"metric_type": "IP", "params": {"ef": max(HNSW_EF, k)} if self.config.index_type == "HNSW" else {}}
        found = self.client.search(self.config.collection, data=[np.asarray(vector, dtype=np.float32).tolist()],
                                   anns_field="vec", limit=self._limit(k), search_params=params,
                                   filter=self._filter(scope),
                                   output_fields=["pk"])[0]  # (by default milvus-lite returns every field)
        return self._rows(found, k, lambda d: d)

    def keyword_search(self, terms: Sequence[str], k: int,
                       scope: "Scope | None" = None) -> tuple[np.ndarray, np.ndarray]:
        """(rows, scores) of the best `k` chunks for BM25 `terms` (keyword.py's tokens), by
        Milvus's full-text search; the scores are bm25s's (see the module docstring)."""
        if not terms or not len(self._keys) or k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        found = self.client.search(self.config.collection, data=[" ".join(terms)], anns_field="sparse",
                                   limit=self._limit(k), search_params={"metric_type": "BM25"},
                                   filter=self._filter(scope), output_fields=["pk"])[0]
        scores, rows = self._rows(found, k, lambda d: abs(d) / (BM25_K1 + 1))
        keep = rows >= 0
        return rows[keep], scores[keep]

    def hybrid_search(self, vector: np.ndarray, terms: Sequence[str], k: int, *, ranker: str = "rrf",
                      rrf_k: int = 60, dense_weight: float = 0.6,
                      scope: "Scope | None" = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows) of dense + BM25 search fused by Milvus's own ranker ("rrf" or "weighted"),
        each request filtered to `scope`'s collections on the server."""
        from pymilvus import AnnSearchRequest, RRFRanker, WeightedRanker

        limit, expr = self._limit(k), self._filter(scope) or None
        requests = [AnnSearchRequest([np.asarray(vector, dtype=np.float32).tolist()], "vec", {"metric_type": "IP"},
                                     limit=limit, expr=expr)]
        if terms:
            requests.append(AnnSearchRequest([" ".join(terms)], "sparse", {"metric_type": "BM25"}, limit=limit,
                                             expr=expr))
        fuse = RRFRanker(rrf_k) if ranker == "rrf" else WeightedRanker(dense_weight, 1 - dense_weight) \
            if terms else WeightedRanker(1.0)
        found = self.client.hybrid_search(self.config.collection, requests, fuse, limit=limit, output_fields=["pk"])[0]
        return self._rows(found, k, lambda d: d)

    def _rows(self, found, k: int, score) -> tuple[np.ndarray, np.ndarray]:
        rows, scores = [], []
        for hit in found:
            row = self.row_of(int(hit["pk"] if "pk" in hit else hit["id"]))
            if row is not None:
                rows.append(row)
                scores.append(score(float(hit["distance"])))
                if len(rows) == k:
                    break
        rows += [-1] * (k - len(rows))
        scores += [0.0] * (k - len(scores))
        return np.asarray(scores, dtype=np.float32), np.asarray(rows, dtype=np.int64)

    def vectors(self, rows: Sequence[int]) -> np.ndarray:
        return np.asarray(self.fetch(rows, "vec"), dtype=np.float32).reshape(-1, self.dimension)

    # --- persistence ------------------------------------------------------------------------

    def _sample_rows(self) -> list[int]:
        n = len(self._keys)
        if n <= SAMPLE_VECTORS:
            return list(range(n))
        return sorted(np.random.default_rng(SAMPLE_SEED).choice(n, SAMPLE_VECTORS, replace=False).tolist())

    def manifest(self) -> dict:
        rows = self._sample_rows()
        sample = {str(r): vector_hash(v) for r, v in zip(rows, self.vectors(rows))} if rows else {}
        return {"store_backend": BACKEND, "index_type": f"milvus-{self.config.index_type.lower()}",
                "milvus": {"uri": self.config.uri, "collection": self.config.collection,
                           "index_type": self.config.index_type, "rows": len(self._keys), "sample": sample}}

    def save(self, directory: Path) -> None:
        self.client.flush(self.config.collection)
        np.save(directory / KEYS_FILE, self._keys)

    def committed(self) -> None:
        """After the new version is live: delete the entities of removed or replaced chunks."""
        garbage = sorted(self._garbage)
        for start in range(0, len(garbage), QUERY_BATCH):
            self.client.delete(self.config.collection, ids=garbage[start:start + QUERY_BATCH])
        self._garbage.clear()

    def forget_previous(self, index_dir: Path) -> None:
        """Mark the entities of the index version this store replaces (a rebuild) as garbage."""
        from .storage import current_version

        try:
            version = current_version(Path(index_dir))
            previous = np.load(version / KEYS_FILE).tolist() if version is not None else []
        except (OSError, ValueError, QabotError):
            previous = []
        self._garbage.update(int(k) for k in previous)

    def entity_count(self) -> int:
        """Entities in the collection (this index's rows plus any a crashed write left behind)."""
        result = self.client.query(self.config.collection, filter="", output_fields=["count(*)"])
        return int(result[0]["count(*)"])

    @classmethod
    def load(cls, version: Path, manifest: Mapping, rows: int, *, uri: str | None = None) -> "MilvusStore":
        """The store of `version`, checked against the collection: the row count, every row's
        entity counted, and the manifest's sample of vectors. `uri` overrides the manifest's
        (the same collection reached from another host)."""
        recorded = manifest.get("milvus") or {}
        try:
            keys = np.load(version / KEYS_FILE)
            config = MilvusConfig(uri or recorded["uri"], recorded["collection"], recorded.get("index_type", "FLAT"))
        except (OSError, ValueError, KeyError) as exc:
            raise IndexCorruptError(f"{version}: cannot read the Milvus keys ({type(exc).__name__}); "
                                    f"{REBUILD_HINT}") from None
        if len(keys) != rows or int(recorded.get("rows", -1)) != rows:
            raise IndexCorruptError(f"{version / KEYS_FILE}: holds {len(keys)} keys for {rows} chunks; {REBUILD_HINT}")
        store = cls(config, version.parent, int(manifest["dimension"]), keys)
        if store.entity_count() < rows:
            raise IndexCorruptError(f"Milvus collection {config.collection!r} holds {store.entity_count()} entities "
                                    f"for {rows} chunks; {REBUILD_HINT}")
        sample = recorded.get("sample") or {}
        if sample:
            sample_rows = [int(r) for r in sample]
            for row, vector in zip(sample_rows, store.vectors(sample_rows)):
                if vector_hash(vector) != sample[str(row)]:
                    raise IndexCorruptError(f"Milvus collection {config.collection!r}: chunk {row}'s vector differs "
                                            f"from the index's; {REBUILD_HINT}")
        return store
