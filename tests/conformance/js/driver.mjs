// Drives the Vercel AI SDK against a live edge gateway: reads {gateway, key, cases} as JSON
// on stdin, runs each case, and prints one JSON array of results (one per case, in order).
// A case fails alone: its error is reported and the others still run.
import { createAnthropic } from '@ai-sdk/anthropic';
import { createGoogleGenerativeAI } from '@ai-sdk/google';
import { createOpenAI } from '@ai-sdk/openai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { generateObject, generateText, Output, stepCountIs, streamText, tool } from 'ai';
import { z } from 'zod';

const input = JSON.parse(await new Promise((resolve, reject) => {
  let data = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk) => { data += chunk; });
  process.stdin.on('end', () => resolve(data));
  process.stdin.on('error', reject);
}));
const { gateway, key, cases } = input;

// Each provider package, pointed at the gateway by its base URL and key alone.
const openai = createOpenAI({ baseURL: `${gateway}/v1`, apiKey: key });
const providers = {
  openai: (model) => openai(model), // the Responses API, store on: item references
  'openai-chat': (model) => openai.chat(model),
  anthropic: createAnthropic({ baseURL: `${gateway}/v1`, apiKey: key }),
  google: createGoogleGenerativeAI({ baseURL: `${gateway}/v1beta`, apiKey: key }),
  'openai-compatible': createOpenAICompatible({
    name: 'edge', baseURL: `${gateway}/v1`, apiKey: key, supportsStructuredOutputs: true, includeUsage: true,
  }),
};

const weather = tool({
  description: 'The weather in a place',
  inputSchema: z.object({ location: z.string() }),
  execute: async ({ location }) => ({ forecast: `sunny in ${location}` }),
});
const trip = z.object({ city: z.string(), days: z.number().int() });

function calls(steps) {
  return steps.flatMap((s) => s.toolCalls.map((c) => ({ name: c.toolName, input: c.input })));
}

function results(steps) {
  return steps.flatMap((s) => s.toolResults.map((r) => ({ name: r.toolName, output: r.output })));
}

const scenarios = {
  async text(model, prompt) {
    const r = await generateText({ model, prompt, maxRetries: 0 });
    return { text: r.text, finishReason: r.finishReason, usage: r.usage };
  },
  async stream(model, prompt) {
    const r = streamText({ model, prompt, maxRetries: 0, onError: () => {} });
    const pieces = [];
    for await (const piece of r.textStream) pieces.push(piece);
    return {
      text: await r.text, pieces: pieces.length, joined: pieces.join(''),
      finishReason: await r.finishReason, usage: await r.usage,
    };
  },
  async tools(model, prompt) {
    const r = await generateText({
      model, prompt, maxRetries: 0, tools: { weather }, stopWhen: stepCountIs(3),
    });
    return {
      text: r.text, steps: r.steps.length, calls: calls(r.steps), results: results(r.steps),
      finishReason: r.finishReason,
    };
  },
  async 'stream-tools'(model, prompt) {
    const r = streamText({
      model, prompt, maxRetries: 0, tools: { weather }, stopWhen: stepCountIs(3),
      onError: () => {},
    });
    const pieces = [];
    for await (const piece of r.textStream) pieces.push(piece);
    const steps = await r.steps;
    return {
      text: await r.text, joined: pieces.join(''), steps: steps.length, calls: calls(steps),
      results: results(steps), finishReason: await r.finishReason,
    };
  },
  async output(model, prompt) {
    const r = await generateText({
      model, prompt, maxRetries: 0, output: Output.object({ schema: trip }),
    });
    return { object: r.output, text: r.text };
  },
  async object(model, prompt) {
    const r = await generateObject({ model, prompt, maxRetries: 0, schema: trip });
    return { object: r.object };
  },
  // useChat's way: every turn sends the whole history; the openai provider sends earlier
  // assistant turns as item references (store is on by default).
  async chat(model, prompt) {
    const messages = [];
    const turns = [];
    for (const n of [1, 2, 3]) {
      messages.push({ role: 'user', content: `${prompt} turn ${n}` });
      const r = await generateText({
        model, messages, maxRetries: 0, include: { requestBody: true },
      });
      messages.push(...r.response.messages);
      turns.push({ text: r.text, sent: r.request.body });
    }
    return { turns };
  },
};

async function run(c) {
  const model = providers[c.provider](c.model);
  try {
    return { id: c.id, ok: true, ...(await scenarios[c.scenario](model, c.prompt)) };
  } catch (error) {
    const detail = error?.responseBody ?? error?.cause?.message ?? '';
    return { id: c.id, ok: false, error: `${error?.name}: ${error?.message} ${detail}`.trim() };
  }
}

// A few at a time: the gateway and the fake provider share the machine with this process.
const out = new Array(cases.length);
let next = 0;
async function worker() {
  while (next < cases.length) {
    const i = next++;
    out[i] = await run(cases[i]);
  }
}
await Promise.all([worker(), worker(), worker(), worker()]);
process.stdout.write(JSON.stringify(out));
