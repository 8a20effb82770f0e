// Classifies the Fashion-MNIST test images with the model `fashion_mlp --onnx FILE` exported,
// in ONNX Runtime, and prints the test accuracy: the same as fashion_mlp's own. The exported
// model takes images as NCHW floats in [0, 1], which is how the IDX file stores them (row
// after row), so they go in as they are read.
//
//   npm install onnxruntime-node          (in the directory you run this from)
//   node examples/onnx_classify.mjs fashion_mlp.onnx [DATA_DIR]
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";

// From the current directory's node_modules (or NODE_PATH), not this file's.
const ort = createRequire(process.cwd() + "/")("onnxruntime-node");
const [model, dir = "/usr/share/datasets/fashion-mnist"] = process.argv.slice(2);
if (!model) {
  console.error("usage: node onnx_classify.mjs MODEL.onnx [DATA_DIR]");
  process.exit(2);
}

// IDX files: a big-endian header (magic, then the dimensions), then one byte per value.
const images = gunzipSync(readFileSync(`${dir}/t10k-images-idx3-ubyte.gz`));
const labels = gunzipSync(readFileSync(`${dir}/t10k-labels-idx1-ubyte.gz`));
const [n, rows, cols] = [4, 8, 12].map((offset) => images.readUInt32BE(offset));
const pixels = Float32Array.from(images.subarray(16), (byte) => byte / 255);

const session = await ort.InferenceSession.create(model);
const input = new ort.Tensor("float32", pixels, [n, 1, rows, cols]);
const logits = (await session.run({ [session.inputNames[0]]: input }))[session.outputNames[0]];
const classes = logits.dims[1];
let correct = 0;
for (let i = 0; i < n; ++i) {
  const scores = logits.data.subarray(i * classes, (i + 1) * classes);
  const predicted = scores.indexOf(Math.max(...scores));
  if (predicted === labels[8 + i]) ++correct;
}
console.log(`test_accuracy ${(correct / n).toFixed(4)}`);
