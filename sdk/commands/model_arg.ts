/**
 * `--model` for every CLI command: a Hugging Face folder, a .gguf file, or (absent) the embedded
 * default model; plus the model's tokenizer when the command needs one.
 */
import { loadHfFolder, type Model } from "../../src/model/model.ts";

export interface OpenedModel {
  model: Model;
  tokenizer?: { encode(text: string, o?: { addSpecialTokens?: boolean }): Uint32Array; bosId?: number };
}

export async function openModel(path: string | undefined, _opts: { needTokenizer?: boolean } = {}): Promise<OpenedModel> {
  if (!path) throw new Error("the default model is not available yet: pass --model <dir>");
  return { model: await loadHfFolder(path) };
}
