// Runs every model onnx_models wrote to a directory in ONNX Runtime (the npm package
// onnxruntime-node, CPU) on its input, and compares the outputs with layercache's: each value
// must agree within 1e-5 (|ort - layercache| <= 1e-5). Prints the largest difference; exits 1
// when a model does not agree.
//
//   NODE_PATH=<node_modules holding onnxruntime-node> node tests/onnx/compare.mjs DIR
import { createRequire } from "node:module";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

// From the current directory's node_modules or NODE_PATH (scripts/check_onnx sets it).
const ort = createRequire(process.cwd() + "/")("onnxruntime-node");
const tolerance = 1e-5;
const dir = process.argv[2];

function read(path, type) {
  const bytes = readFileSync(path);
  const Array = type === "float64" ? Float64Array : Float32Array;
  return new Array(bytes.buffer, bytes.byteOffset, bytes.length / Array.BYTES_PER_ELEMENT);
}

let failed = 0;
const names = readdirSync(dir).filter((f) => f.endsWith(".json")).map((f) => f.slice(0, -5)).sort();
if (names.length === 0) { console.error(`no model in ${dir}`); process.exit(1); }
for (const name of names) {
  const spec = JSON.parse(readFileSync(join(dir, name + ".json"), "utf8"));
  let got;
  try {
    const session = await ort.InferenceSession.create(join(dir, name + ".onnx"));
    const input = new ort.Tensor(spec.type, read(join(dir, name + ".input.bin"), spec.type), spec.input);
    const result = await session.run({ [session.inputNames[0]]: input });
    got = result[session.outputNames[0]];
  } catch (e) {
    ++failed;
    console.log(`${name}: ONNX Runtime failed: ${e.message}`);
    continue;
  }
  const want = read(join(dir, name + ".output.bin"), spec.type);
  let largest = 0, bad = 0;
  const sameDims = JSON.stringify(got.dims) === JSON.stringify(spec.output);
  for (let i = 0; sameDims && i < want.length; ++i) {
    const diff = Math.abs(got.data[i] - want[i]);
    largest = Math.max(largest, diff);
    if (!(diff <= tolerance)) ++bad;  // a NaN counts as a disagreement
  }
  const ok = sameDims && bad === 0;
  if (!ok) ++failed;
  console.log(`${name}: ${ok ? "agrees" : "DISAGREES"}: output ${JSON.stringify(got.dims)}` +
              (sameDims ? `, ${want.length} values, largest difference ${largest.toExponential(2)}, ` +
                          `${bad} beyond ${tolerance}`
                        : ` where layercache's is ${JSON.stringify(spec.output)}`));
}
console.log(`onnxruntime-node ${ort.env.versions.node}: ${names.length - failed} of ${names.length} models agree with layercache`);
process.exit(failed ? 1 : 0);
