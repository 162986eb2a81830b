// Parse and draw Mermaid diagrams with mermaid.js itself (headless, through jsdom); used by
// tests/cli/test_diagram_command.py. Reads a JSON list of diagram texts on stdin; prints a JSON list with,
// for each, the error message (a string) if mermaid refuses it, else the arrows mermaid actually drew:
// [label, ...] in drawing order ('' for an unlabelled arrow), notes' connectors left out. Drawing, not
// just parsing, is what shows arrows that the layout drops (mermaid keeps one loop per state, say).
import { JSDOM } from 'jsdom';

const dom = new JSDOM('<!doctype html><html><body></body></html>', { pretendToBeVisual: true });
for (const name of ['window', 'document', 'navigator', 'Element', 'HTMLElement', 'SVGElement', 'Node',
                    'DOMParser', 'XMLSerializer', 'CSSStyleSheet', 'MutationObserver', 'getComputedStyle']) {
  if (!(name in globalThis)) globalThis[name] = name === 'window' ? dom.window : dom.window[name];
}
// jsdom lays nothing out: give text a size from its length so the layout has something to place
const size = (node) => ({ x: 0, y: 0, width: Math.max(7 * (node.textContent || '').length, 10), height: 16 });
dom.window.SVGElement.prototype.getBBox = function () { return size(this); };
dom.window.SVGElement.prototype.getComputedTextLength = function () { return size(this).width; };
const { default: mermaid } = await import('mermaid');
mermaid.initialize({ startOnLoad: false });

let input = '';
for await (const chunk of process.stdin) input += chunk;
const results = [];
let n = 0;
for (const text of JSON.parse(input)) {
  try {
    await mermaid.parse(text);
  } catch (e) {
    results.push(String(e && e.message ? e.message : e));
    continue;
  }
  const { svg } = await mermaid.render(`diagram${n++}`, text);
  const drawn = new dom.window.DOMParser().parseFromString(svg, 'text/html')  // HTML labels are not well-formed XML;
  const arrows = [];
  for (const label of drawn.querySelectorAll('.edgeLabels .edgeLabel [data-id]')) {
    if (!label.getAttribute('data-id').includes('----note-')) arrows.push(label.textContent.trim());
  }
  results.push(arrows);
}
process.stdout.write(JSON.stringify(results));
