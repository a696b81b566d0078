/**
 * The dashboard's stylesheet, served as `/_dashboard/dashboard.css`. A string in a module
 * (not a file) so `tsc` alone builds everything the server serves. Node-safe.
 */
export const DASHBOARD_CSS = `
:root {
  color-scheme: light;
  --ink: #1d1b26;
  --muted: #5b5868;
  --line: #d9d5e2;
  --panel: #ffffff;
  --page: #f4f2f7;
  --accent: #5b2a86;
  --accent-ink: #ffffff;
  --danger: #a4132c;
  --ok: #1f6e43;
  --focus: #1a73e8;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  font-size: 16px;
  line-height: 1.45;
  color: var(--ink);
  background: var(--page);
}
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; }
a { color: var(--accent); }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
.skip-link { position: absolute; left: -999px; top: 0; background: var(--panel); padding: .5rem; z-index: 10; }
.skip-link:focus { left: .5rem; }
.top {
  display: flex; flex-wrap: wrap; align-items: center; gap: .5rem 1.5rem;
  padding: .6rem 1rem; background: var(--ink); color: #fff;
}
.top h1 { font-size: 1.15rem; margin: 0; letter-spacing: .02em; }
.top a { color: #e7dcff; }
.top nav { display: flex; flex-wrap: wrap; gap: .25rem .9rem; }
.top-links { margin: 0 0 0 auto; display: flex; gap: 1rem; }
main { padding: 1rem; max-width: 90rem; margin: 0 auto; }
.page-status:empty { display: none; }
.problem, .field-error { color: var(--danger); }
.field-error { margin: .15rem 0 0; font-size: .9rem; }
.field-error:empty { display: none; }
.ok { color: var(--ok); }
h2 { font-size: 1.3rem; margin: 0 0 .25rem; }
h3 { font-size: 1.05rem; margin: 1rem 0 .5rem; }
h4 { font-size: 1rem; margin: 0; }
.muted, .hint { color: var(--muted); }
.hint { font-size: .85rem; margin: .1rem 0 0; }
.hint:empty { display: none; }
code, .name { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: .9em; }
.name { color: var(--muted); font-weight: normal; }
button {
  font: inherit; border-radius: 6px; border: 1px solid var(--accent);
  background: var(--accent); color: var(--accent-ink); padding: .35rem .8rem; cursor: pointer;
  min-height: 2.2rem;
}
button.secondary { background: var(--panel); color: var(--accent); }
button.danger { background: var(--panel); color: var(--danger); border-color: var(--danger); }
button:disabled { opacity: .5; cursor: default; }
input, select, textarea {
  font: inherit; padding: .3rem .45rem; border: 1px solid #a9a4b8; border-radius: 5px;
  background: #fff; color: var(--ink); max-width: 100%; min-height: 2.2rem;
}
input[type=number] { width: 10rem; }
input[type=text], textarea { width: 100%; }
input[type=checkbox] { min-height: auto; width: 1.2rem; height: 1.2rem; }
[aria-invalid=true] { border-color: var(--danger); box-shadow: 0 0 0 1px var(--danger); }
label { font-weight: 600; display: block; }
.checkbox-row { display: flex; align-items: center; gap: .4rem; }
.required { color: var(--danger); }
.field { margin: .4rem 0; }
fieldset { border: 1px solid var(--line); border-radius: 6px; margin: .4rem 0; padding: .3rem .7rem .5rem; min-width: 0; }
legend { font-weight: 600; padding: 0 .3rem; }
.card {
  background: var(--panel); border: 1px solid var(--line); border-radius: 10px;
  padding: 1rem; margin: 0 0 1rem; min-width: 0;
}
.thing-header { display: flex; flex-wrap: wrap; align-items: baseline; gap: .25rem 1rem; }
.thing-grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 24rem), 1fr)); gap: 0 1.5rem; }
.property { border-top: 1px solid var(--line); padding: .5rem 0; }
.property-head { display: flex; flex-wrap: wrap; justify-content: space-between; gap: .25rem 1rem; align-items: baseline; }
.property-value { font-variant-numeric: tabular-nums; font-weight: 600; overflow-wrap: anywhere; }
.property form { display: flex; flex-wrap: wrap; align-items: flex-end; gap: .25rem .75rem; margin-top: .25rem; }
.property form .field, .property form fieldset { flex: 1 1 12rem; margin: 0; }
.form-message { margin: .2rem 0 0; font-size: .9rem; flex-basis: 100%; }
.form-message:empty { display: none; }
.action { border-top: 1px solid var(--line); padding: .5rem 0; }
.action > details > summary { cursor: pointer; padding: .2rem 0; }
.action-buttons { display: flex; flex-wrap: wrap; gap: .5rem; margin: .4rem 0; }
.invocation { border-left: 3px solid var(--line); padding: .25rem 0 .25rem .75rem; margin: .5rem 0; }
.invocation[data-status=running], .invocation[data-status=pending] { border-color: var(--accent); }
.invocation[data-status=completed] { border-color: var(--ok); }
.invocation[data-status=failed], .invocation[data-status=cancelled] { border-color: var(--danger); }
.progress-row { display: flex; align-items: center; gap: .6rem; flex-wrap: wrap; }
progress { width: 14rem; max-width: 100%; height: 1rem; accent-color: var(--accent); }
.log { max-height: 9rem; overflow: auto; margin: .3rem 0; padding: .3rem .5rem; background: #f7f6fa; border-radius: 5px; font-size: .85rem; list-style: none; }
.log:empty { display: none; }
.log li { font-family: ui-monospace, Menlo, monospace; white-space: pre-wrap; overflow-wrap: anywhere; }
.log .level-error, .log .level-warn { color: var(--danger); }
pre.output { background: #f7f6fa; padding: .5rem; border-radius: 5px; overflow: auto; max-height: 16rem; font-size: .85rem; margin: .3rem 0; }
.events { list-style: none; padding: 0; margin: 0; max-height: 14rem; overflow: auto; }
.events li { border-top: 1px solid var(--line); padding: .3rem 0; font-size: .9rem; overflow-wrap: anywhere; }
.events time { color: var(--muted); font-variant-numeric: tabular-nums; margin-right: .5rem; }
.streams { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 18rem), 1fr)); gap: 1rem; }
figure { margin: 0; }
figcaption { font-size: .9rem; margin-top: .25rem; display: flex; flex-wrap: wrap; gap: .25rem .75rem; align-items: center; }
.stream-image { display: block; width: 100%; height: auto; background: #111; border-radius: 6px; min-height: 6rem; }
.stream-paused { margin: 0; padding: 1rem; border: 1px dashed var(--line); border-radius: 6px; }
.capture-preview img { display: block; max-width: 100%; height: auto; border-radius: 6px; margin-top: .3rem; }

/* The microscope: the live view is the centre of the page and stays in sight. */
.microscope {
  display: grid; gap: .75rem 1rem; align-items: start;
  grid-template-columns: minmax(0, 3fr) minmax(17rem, 1fr);
  grid-template-rows: auto 1fr;
  grid-template-areas: "view panel" "gallery panel";
}
.scope-view { grid-area: view; position: sticky; top: .5rem; z-index: 2; background: var(--panel); }
.scope-panel { grid-area: panel; min-width: 0; }
.gallery { grid-area: gallery; min-width: 0; }
.view-surface {
  position: relative; display: block; width: fit-content; max-width: 100%; margin: 0 auto;
  padding: 0; border: 0; border-radius: 8px; background: #111; cursor: crosshair; min-height: 6rem;
}
/* Tall enough to see, short enough that the view and the gallery fit one screen. */
.view-surface img {
  display: block; max-width: 100%; width: auto; height: auto; max-height: calc(100vh - 13rem);
  border-radius: 8px;
}
.crosshair { position: absolute; inset: 0; pointer-events: none; }
.crosshair::before, .crosshair::after { content: ""; position: absolute; background: rgba(255,255,255,.7); }
.crosshair::before { left: 50%; top: calc(50% - 14px); width: 1px; height: 28px; }
.crosshair::after { top: 50%; left: calc(50% - 14px); height: 1px; width: 28px; }
.click-marker { position: absolute; width: 22px; height: 22px; margin: -11px 0 0 -11px; border: 2px solid #ffd54a; border-radius: 50%; pointer-events: none; }
.scale-bar { position: absolute; left: 3%; right: 3%; bottom: 4%; pointer-events: none; color: #fff; font-size: .8rem; text-shadow: 0 0 3px #000, 0 0 2px #000; }
.scale-bar-line { display: block; height: 4px; background: #fff; box-shadow: 0 0 0 1px rgba(0,0,0,.6); }
.scale-bar-label { display: block; margin-top: 2px; font-variant-numeric: tabular-nums; }
.scope-panel .position { display: grid; grid-template-columns: repeat(3, auto 1fr); gap: .1rem .5rem; margin: 0 0 .5rem; font-variant-numeric: tabular-nums; }
.scope-panel .position dt { font-weight: 600; }
.scope-panel .position dd { margin: 0; }
.scope-panel section { padding: .5rem 0; }
.scope-panel section + section { border-top: 1px solid var(--line); }
.scope-panel section:first-child { padding-top: 0; }
.scope-panel h3 { margin: .25rem 0 .4rem; }
.jog-pad {
  display: grid; grid-template-columns: repeat(3, 2.6rem) 1rem 2.6rem; grid-template-rows: repeat(3, 2.4rem);
  gap: .25rem; grid-template-areas: ". up . . zup" "left . right . ." ". down . . zdown"; margin: .25rem 0 .5rem;
}
.jog-pad button { padding: 0; min-height: 0; font-size: 1rem; }
.jog-up { grid-area: up; } .jog-left { grid-area: left; } .jog-right { grid-area: right; }
.jog-down { grid-area: down; } .jog-zup { grid-area: zup; } .jog-zdown { grid-area: zdown; }
.presets { display: flex; flex-wrap: wrap; gap: .2rem .4rem; border: 0; padding: 0; margin: .2rem 0; align-items: center; }
.presets legend { float: left; font-weight: 600; font-size: .9rem; padding: 0; margin-right: .4rem; }
.preset { display: inline-flex; align-items: center; gap: .2rem; font-weight: normal; font-size: .9rem; border: 1px solid var(--line); border-radius: 5px; padding: .1rem .45rem; cursor: pointer; }
.preset:has(input:checked) { border-color: var(--accent); background: #f1eaf8; }
.preset input { min-height: 0; margin: 0; }
.gallery h3 { margin: 0 0 .3rem; font-size: .95rem; }
.gallery-strip { display: flex; gap: .5rem; overflow-x: auto; list-style: none; margin: 0; padding: 0 0 .25rem; height: 6.2rem; }
.gallery-strip li { flex: 0 0 auto; display: flex; flex-direction: column; align-items: flex-start; gap: .1rem; font-size: .75rem; }
.gallery-thumb { padding: 0; border: 1px solid var(--line); background: #111; border-radius: 5px; min-height: 0; height: 4.5rem; }
.gallery-thumb img { display: block; height: 100%; width: auto; border-radius: 4px; }
.gallery-strip:empty { display: none; }
/* The empty strip's place is kept, so the first capture moves nothing. */
.gallery-empty { height: 6.2rem; margin: 0; }
.gallery-dialog { max-width: min(96vw, 1400px); max-height: 96vh; padding: .5rem; border: 0; border-radius: 8px; }
.gallery-dialog::backdrop { background: rgba(0,0,0,.7); }
.gallery-dialog-bar { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: center; justify-content: flex-end; margin-bottom: .4rem; }
.gallery-dialog-bar span { margin-right: auto; color: var(--muted); }
.gallery-full { display: block; max-width: 100%; max-height: calc(96vh - 4rem); height: auto; margin: 0 auto; }
.button-row { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; }
.token-prompt { background: #fff4d6; border-bottom: 1px solid #e5c66b; padding: .75rem 1rem; }
.token-prompt form { display: flex; flex-wrap: wrap; gap: .5rem; align-items: flex-end; }
.token-prompt input { width: 22rem; }

.visually-hidden { position: absolute !important; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }
/* An invocation: one line (its summary) once finished, open while it runs. */
details.invocation > summary { cursor: pointer; list-style-position: inside; overflow-wrap: anywhere; }
details.invocation > summary .status { color: var(--muted); }
details.invocation[data-status=failed] > summary .status, details.invocation[data-status=cancelled] > summary .status { color: var(--danger); }
details.invocation[data-status=completed] > summary .status { color: var(--ok); }
details.invocation .progress-row { margin-top: .2rem; }
/* Properties: one compact row each, readings and settings in groups. */
.property-group h3 { margin: .6rem 0 .2rem; font-size: .95rem; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
.property { padding: .3rem 0; display: grid; grid-template-columns: minmax(0, 1fr) auto; align-items: start; column-gap: 1rem; }
.property-head { grid-column: 1 / -1; }
.property-description { grid-column: 1; margin: 0; }
.property > form { grid-column: 2; justify-content: flex-end; margin-top: .15rem; }
.property > .form-message { grid-column: 1 / -1; }
.property form .field input[type=number], .property form .field input[type=text] { width: 7rem; }
.property > form { flex-wrap: nowrap; }
.property > form > .field, .property > form > fieldset { flex: 0 1 auto; }
.property:has(form > fieldset) > form { grid-column: 1 / -1; }
.property-title { min-width: 0; }
.property-reading { display: inline-flex; align-items: center; gap: .5rem; flex-wrap: wrap; justify-content: flex-end; }
.property-description { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.property form > .field > label, .property form > fieldset > legend { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }
.property form { align-items: flex-start; }
.property form > fieldset { border: 0; padding: 0; display: flex; flex-wrap: wrap; gap: .25rem .75rem; }
.property form > fieldset .field { margin: 0; }
.property form > fieldset label { font-weight: normal; font-size: .85rem; }
.property form .hint { font-size: .75rem; }
.property form button[type=submit] { margin-top: 0; }
.history-graph polyline { stroke: var(--accent); stroke-width: 1.5; vector-effect: non-scaling-stroke; }
.history-graph { background: #f7f6fa; border-radius: 3px; }
.action-form > summary { cursor: pointer; padding: .2rem 0; }
.action-form[open] > summary { margin-bottom: .3rem; }

@media (max-width: 48rem) {
  main { padding: .5rem; }
  .microscope { grid-template-columns: minmax(0, 1fr); grid-template-rows: none; grid-template-areas: "view" "panel" "gallery"; }
  .scope-view { top: 0; padding-bottom: .25rem; }
  .property { grid-template-columns: minmax(0, 1fr); }
  .property > form { grid-column: 1; justify-content: flex-start; flex-wrap: wrap; }
  .scope-view .hint { display: none; }
  .view-surface img { max-height: 40vh; }
  .top-links { margin: 0; }
  .card { padding: .75rem; }
  input[type=number] { width: 100%; }
}
@media (prefers-reduced-motion: reduce) {
  * { scroll-behavior: auto !important; transition: none !important; }
}
`;
