// Validates Istio resources against the JSON schemas generated from Istio's own CRDs
// (npm @kubernetes-models/istio, pinned in package.json; Istio 1.29's crd-all.gen.yaml).
// Input: a JSON array of resources on stdin. Output: one line per resource; exit 1 on
// any failure, or on a kind this package has no schema for.
import { readFileSync } from "node:fs";
import * as istio from "@kubernetes-models/istio";

const docs = JSON.parse(readFileSync(0, "utf8"));
// The package's index exports each API group as a namespace of versions of kinds.
function modelFor(apiVersion, kind) {
  const [group, version] = apiVersion.split("/");
  const key = Object.keys(istio).find((k) => {
    const g = istio[k];
    return g && g[version] && g[version][kind] && g[version][kind].apiVersion === apiVersion;
  });
  return key ? istio[key][version][kind] : undefined;
}
let failed = 0;
for (const doc of docs) {
  const what = `${doc.kind}/${doc.metadata?.namespace ?? ""}/${doc.metadata?.name ?? ""} (${doc.apiVersion})`;
  const Model = modelFor(doc.apiVersion, doc.kind);
  if (!Model) {
    console.log(`  FAIL ${what}: no Istio schema for this kind`);
    failed++;
    continue;
  }
  try {
    new Model(doc).validate();
    console.log(`  ok   ${what}: Istio CRD schema`);
  } catch (e) {
    console.log(`  FAIL ${what}: ${e.message}`);
    failed++;
  }
}
process.exit(failed ? 1 : 0);
