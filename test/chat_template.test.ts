import { describe, expect, it } from "vitest";
import { splitChatTemplate } from "../src/chat/template.ts";
import { runtimeName } from "../src/runtime.ts";

// SmolLM2-Instruct's template (ChatML with a default system turn) and Llama-3's, as shipped.
const SMOLLM2 = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
const LLAMA3 = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

describe(`chat template split on ${runtimeName()}`, () => {
  it("ChatML (SmolLM2): prefix holds the default system turn and the user opening", () => {
    const p = splitChatTemplate(SMOLLM2, { instruction: "Use the documents.\n" });
    expect(p.prefix).toBe("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nUse the documents.\n");
    expect(p.queryTail).toBe("<|im_end|>\n<|im_start|>assistant\n");
  });

  it("a given system message replaces the default", () => {
    const p = splitChatTemplate(SMOLLM2, { system: "Be brief." });
    expect(p.prefix).toBe("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n");
  });

  it("Llama-3: BOS and headers in the prefix, eot + assistant header in the query tail", () => {
    const p = splitChatTemplate(LLAMA3, { bosToken: "<|begin_of_text|>", system: "S" });
    expect(p.prefix).toBe("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n");
    expect(p.queryTail).toBe("<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
  });

  it("a template that rewrites the user message is a clear error", () => {
    expect(() => splitChatTemplate("{{ messages[0]['content'] | upper }}")).toThrow(/cannot be split/);
    expect(() => splitChatTemplate("{% for %}")).toThrow(/cannot render/);
  });
});
