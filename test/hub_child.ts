// A child process for test/hub.test.ts: resolves one model source (HF_ENDPOINT, HF_HUB_CACHE from the
// environment) and prints {"path": ...}.
import process from "node:process";
import { resolveModelSource } from "../src/model/source.ts";

const path = await resolveModelSource(process.argv[2]);
console.log(JSON.stringify({ path }));
