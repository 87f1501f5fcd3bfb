// Independent Zarr v3 reader and writer for ChunkSeg's tests: zarrita 0.7.5 (npm, pinned in npm/package.json;
// install with `npm ci --prefix tools/reference/npm`). Values travel as raw C-order little-endian files.
//
//   node zarr_v3.mjs read MANIFEST.json    MANIFEST: [{"name", "path" (array dir), "out" (raw file to write)}]
//       prints {"name": {"shape": [...], "dtype": "uint16", "chunks": [...]} | {"error": "..."}}
//   node zarr_v3.mjs write MANIFEST.json   MANIFEST: [{"name", "path", "shape", "chunk_shape", "dtype", "codecs",
//       "fill_value", "separator"?, "input" (raw file of the whole array)}]; prints {"name": "ok" | "error ..."}
//
// zarrita 0.7.5 writes every codec it can encode (bytes, transpose, gzip, zlib, blosc, zstd) but not crc32c (its
// encoder is unimplemented) and not sharding_indexed (a sharded array's set() writes inner chunks as plain chunk
// files, not shards), and it reads shards only with the index at the end (index_location "start" is ignored).
import { readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

// The packages are ESM-only and live in npm/node_modules beside this script, not above it: import them by file.
const modules = path.join(path.dirname(fileURLToPath(import.meta.url)), "npm", "node_modules");
const zarr = await import(pathToFileURL(path.join(modules, "zarrita", "dist", "src", "index.js")).href);
const { default: FileSystemStore } = await import(pathToFileURL(path.join(modules, "@zarrita", "storage", "dist", "src", "fs.js")).href);

const typed = {
  int8: Int8Array, uint8: Uint8Array, int16: Int16Array, uint16: Uint16Array, int32: Int32Array, uint32: Uint32Array,
  int64: BigInt64Array, uint64: BigUint64Array, float32: Float32Array, float64: Float64Array,
};

function cStrides(shape) {
  const strides = new Array(shape.length);
  let s = 1;
  for (let d = shape.length - 1; d >= 0; d--) { strides[d] = s; s *= shape[d]; }
  return strides;
}

/** The chunk's data in C order, whatever strides zarrita returned (a transpose codec may give others). */
function toCOrder(chunk) {
  const { data, shape, stride } = chunk;
  const want = cStrides(shape);
  if (shape.every((_, d) => shape[d] <= 1 || stride[d] === want[d])) return data;
  const out = new data.constructor(data.length);
  const index = new Array(shape.length).fill(0);
  for (let i = 0; i < out.length; i++) {
    let s = 0;
    for (let d = 0; d < shape.length; d++) s += index[d] * stride[d];
    out[i] = data[s];
    for (let d = shape.length - 1; d >= 0; d--) { if (++index[d] < shape[d]) break; index[d] = 0; }
  }
  return out;
}

async function read(entry) {
  const arr = await zarr.open(new FileSystemStore(entry.path), { kind: "array" });
  const chunk = await zarr.get(arr, null);
  const data = toCOrder(chunk);
  writeFileSync(entry.out, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  return { shape: arr.shape, dtype: arr.dtype, chunks: arr.chunks };
}

async function write(entry) {
  const store = new FileSystemStore(entry.path);
  const arr = await zarr.create(store, {
    shape: entry.shape, chunkShape: entry.chunk_shape, dtype: entry.dtype, codecs: entry.codecs,
    fillValue: entry.fill_value, chunkSeparator: entry.separator ?? "/", dimensionNames: entry.dimension_names,
  });
  const bytes = readFileSync(entry.input);
  const buffer = new ArrayBuffer(bytes.length);
  new Uint8Array(buffer).set(bytes);
  const data = new typed[entry.dtype](buffer);
  await zarr.set(arr, null, { data, shape: entry.shape, stride: cStrides(entry.shape) });
}

const [command, manifestPath] = process.argv.slice(2);
const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
const results = {};
for (const entry of manifest) {
  try {
    if (command === "read") results[entry.name] = await read(entry);
    else if (command === "write") { await write(entry); results[entry.name] = "ok"; }
    else throw new Error(`unknown command ${command}; expected read or write`);
  } catch (e) {
    results[entry.name] = command === "read" ? { error: String(e?.stack ?? e) } : `error ${e?.stack ?? e}`;
  }
}
process.stdout.write(JSON.stringify(results));
