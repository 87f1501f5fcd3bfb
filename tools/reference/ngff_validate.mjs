// Validates the OME-NGFF metadata of an OME-Zarr store against the official JSON schemas (ngff-schemas/, vendored
// from ome/ngff; see ngff-schemas/README.md) with ajv 8.20.0 (npm, pinned in npm/package.json), an implementation
// ChunkSeg shares nothing with.
//
//   node ngff_validate.mjs STORE
//
// Every image group is checked: the root, and each labels/NAME group the "labels" attribute lists (of the labels/
// group, where the spec puts it, or of the root). Its attributes (v2: .zattrs; v3: zarr.json "attributes") pick the
// schemas: the version from multiscales[0].version (0.4) or ome.version (0.5), and the kind: a group with
// "image-label" is a label image, checked against image, strict_image, label and strict_label; an image against image
// and strict_image. Each dataset must also be an array of as many dimensions as there are axes (a spec MUST the
// schemas cannot express). Prints {"ok", "groups": [{"group", "version", "kind", "levels", "results": [{"schema",
// "valid", "errors"}]}]} and exits 1 when anything fails.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const modules = path.join(here, "npm", "node_modules");
// ajv's 2020 build: every vendored schema is draft 2020-12 (or, the strict ones, declares no draft).
const { default: Ajv2020 } = await import(pathToFileURL(path.join(modules, "ajv", "dist", "2020.js")).href);

const schemaDir = path.join(here, "ngff-schemas");
// strict false: ajv's own lint of schema style (e.g. 0.5's ome.schema has a minContains without contains) is not ours
// to enforce; a $ref it cannot resolve still throws.
const ajv = new Ajv2020({ allErrors: true, strict: false });
for (const version of ["0.4", "0.5"])
  for (const file of readdirSync(path.join(schemaDir, version)).filter((f) => f.endsWith(".schema"))) {
    const schema = JSON.parse(readFileSync(path.join(schemaDir, version, file), "utf8"));
    if (schema.$schema && schema.$schema !== "https://json-schema.org/draft/2020-12/schema")
      throw new Error(`${version}/${file}: $schema ${schema.$schema} needs another ajv build`);
    // 0.4's strict_image.schema has no $id: register it under the address the others use.
    ajv.addSchema(schema, schema.$id ? undefined : `https://ngff.openmicroscopy.org/${version}/schemas/${file}`);
  }
// Compile every schema now: a $ref to a schema not vendored throws here, whatever the store holds.
for (const key of Object.keys(ajv.schemas)) ajv.getSchema(key);

const store = process.argv[2];
if (!store) { console.error("usage: node ngff_validate.mjs STORE"); process.exit(2); }

/** A node's attributes and Zarr version: v3 zarr.json "attributes", else v2 .zattrs; null when neither exists. */
function attributes(dir) {
  const v3 = path.join(dir, "zarr.json");
  if (existsSync(v3)) return { zarr: 3, attrs: JSON.parse(readFileSync(v3, "utf8")).attributes ?? {} };
  const v2 = path.join(dir, ".zattrs");
  if (existsSync(v2)) return { zarr: 2, attrs: JSON.parse(readFileSync(v2, "utf8")) };
  return null;
}

/** The number of dimensions of the array at dir, or null when it is not an array. */
function arrayRank(dir) {
  const v3 = path.join(dir, "zarr.json");
  if (existsSync(v3)) {
    const meta = JSON.parse(readFileSync(v3, "utf8"));
    return meta.node_type === "array" ? meta.shape.length : null;
  }
  const v2 = path.join(dir, ".zarray");
  return existsSync(v2) ? JSON.parse(readFileSync(v2, "utf8")).shape.length : null;
}

/** The OME metadata object of a node: 0.5 nests it under "ome", 0.4 keeps it at the top. */
const omeOf = (node) => (node.zarr === 3 ? node.attrs.ome ?? {} : node.attrs);

function labelGroups(root) {
  const names = new Set(omeOf(root).labels ?? []);
  const labels = attributes(path.join(store, "labels"));
  for (const name of labels ? omeOf(labels).labels ?? [] : []) names.add(name);
  return [...names].map((name) => `labels/${name}`);
}

function check(group) {
  const node = attributes(path.join(store, group));
  if (!node) return { group, results: [{ schema: null, valid: false, errors: ["no .zattrs or zarr.json"] }] };
  const ome = omeOf(node);
  const version = node.zarr === 3 ? ome.version : ome.multiscales?.[0]?.version;
  const kind = ome["image-label"] !== undefined ? "label" : "image";
  if (version !== "0.4" && version !== "0.5")
    return { group, version, kind, results: [{ schema: null, valid: false, errors: [`no schemas for version ${JSON.stringify(version)}`] }] };
  const names = kind === "label" ? ["image", "strict_image", "label", "strict_label"] : ["image", "strict_image"];
  const results = names.map((name) => {
    const validate = ajv.getSchema(`https://ngff.openmicroscopy.org/${version}/schemas/${name}.schema`);
    const valid = validate(node.attrs);
    return { schema: `${version}/${name}.schema`, valid, errors: valid ? [] : validate.errors };
  });
  // Every level is an array with one dimension per axis.
  const multiscale = ome.multiscales?.[0] ?? {};
  const rank = multiscale.axes?.length;
  const levels = (multiscale.datasets ?? []).map((d) => d.path);
  const levelErrors = levels.flatMap((level) => {
    const r = arrayRank(path.join(store, group, String(level)));
    return r === rank ? [] : [`dataset ${JSON.stringify(level)}: ${r === null ? "not an array" : `${r} dimensions`}, ${rank} axes`];
  });
  results.push({ schema: "levels", valid: levelErrors.length === 0, errors: levelErrors });
  return { group, version, kind, levels, results };
}

const root = attributes(store);
const groups = ["", ...(root ? labelGroups(root) : [])].map(check);
const ok = groups.every((g) => g.results.every((r) => r.valid));
console.log(JSON.stringify({ ok, groups }, null, 1));
process.exit(ok ? 0 : 1);
