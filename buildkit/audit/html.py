"""The audit as one self-contained HTML page that fits a 1280 px screen and prints.

On top: one verdict line per artifact (passes the gate / fails: which checks on which
files), the policy, and what changed since the baseline. Then, per artifact and file
format, a matrix of its native files against the checks that apply to that format (a
column no file in the table can have is left out, and named below it), each cell
labelled (pass / FAIL / n/a / ? / waived). A row the gate judges is marked "gated";
under each row a details line opens the evidence of every check, the file's owner and
how to fix it (no hovering needed; all of them open for printing). Long paths wrap.
No server, no external file; it works with scripts off (the component filter and the
print hook are the only scripts; a link ending in ``#component=wheel`` opens the page
filtered)."""

from __future__ import annotations

from html import escape

from .baseline import Comparison
from .findings import ELF_CHECKS, MACHO_CHECKS, FileReport, State
from .policy import GateResult, Outcome, in_scope
from .report import CHECKS, SCOPES, fix_of
from .run import AuditResult
from .verdict import verdicts

_STYLE = """
*{box-sizing:border-box}
body{font:14px/1.4 system-ui,sans-serif;margin:1em 1.25em;color:#111;max-width:100%}
h1{font-size:1.35em;margin:.2em 0} h2{font-size:1.1em;margin:1.2em 0 .3em;
overflow-wrap:anywhere}
ul.verdicts{padding-left:1.2em;margin:.4em 0} ul.verdicts li{overflow-wrap:anywhere}
.ok{color:#176117} .bad{color:#a11} .none{color:#555}
table{border-collapse:collapse;margin:.4em 0 .2em;width:100%;table-layout:fixed}
th,td{border:1px solid #bbb;padding:.15em .3em;text-align:center;font-size:12.5px;
overflow-wrap:anywhere}
th{background:#f2f2f6;font-weight:600;font-size:12px;padding:.15em .15em;
overflow-wrap:normal;word-break:normal}
td.file{text-align:left;font-family:ui-monospace,monospace;font-size:12px}
td.owner{text-align:left}
td.pass{background:#c8ecc8} td.fail{background:#f6b8b8;font-weight:bold}
td.na{background:#eee;color:#777} td.unknown{background:#fbe7a6}
td.waived{background:#cfe0f7}
td.gated{font-weight:600} td.reported{color:#666}
tr.details td{text-align:left;border-top:0;padding:0 .4em .2em;font-size:12px}
tr.details summary{color:#335;cursor:pointer}
tr.details dl{margin:.2em 0 .4em;display:grid;grid-template-columns:max-content 1fr;
gap:0 .8em} tr.details dt{font-weight:600} tr.details dd{margin:0;overflow-wrap:anywhere}
p.note{color:#555;font-size:12.5px;margin:.1em 0 .8em}
.legend span{display:inline-block;padding:0 .5em;margin:0 .3em .2em 0;border:1px solid #bbb}
.legend span.pass{background:#c8ecc8} .legend span.fail{background:#f6b8b8}
.legend span.na{background:#eee} .legend span.unknown{background:#fbe7a6}
.legend span.waived{background:#cfe0f7}
@media print{body{margin:0;font-size:11px} #filter{display:none}
tr{break-inside:avoid} th,td{font-size:10px}}
"""

_SCRIPT = """
var select = document.getElementById('component');
function show(want) {
  select.value = want;
  document.querySelectorAll('tr[data-component]').forEach(function (row) {
    row.hidden = want !== 'all' && row.dataset.component !== want;
  });
}
select.addEventListener('change', function () {
  show(select.value);
  history.replaceState(null, '', '#component=' + encodeURIComponent(select.value));
});
if (location.hash.indexOf('#component=') === 0) {
  show(decodeURIComponent(location.hash.slice(11)));
}
window.addEventListener('beforeprint', function () {
  document.querySelectorAll('details').forEach(function (d) { d.open = true; });
});
"""

_LABEL = {State.PASS: "pass", State.FAIL: "FAIL", State.NOT_APPLICABLE: "n/a", State.UNKNOWN: "?"}
_CLASS = {
    State.PASS: "pass",
    State.FAIL: "fail",
    State.NOT_APPLICABLE: "na",
    State.UNKNOWN: "unknown",
}
_COLUMNS = {"elf": ELF_CHECKS, "mach-o": MACHO_CHECKS, "python": ("seccomp",)}


def _columns(fmt: str, rows: list[FileReport]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The checks of ``fmt`` that apply to at least one row, and the ones that apply to
    none (named under the table)."""
    names = _COLUMNS.get(fmt, ())
    if not names:  # unparseable files: their one finding
        return (), ()

    def applies(name: str) -> bool:
        return any(
            (c := r.check(name)) is not None and c.state is not State.NOT_APPLICABLE for r in rows
        )

    shown = tuple(n for n in names if applies(n))
    return shown, tuple(n for n in names if n not in shown)


def _verdict_block(result: AuditResult, gate: GateResult | None) -> list[str]:
    out = ['<ul class="verdicts" id="verdicts">']
    for v in verdicts(result, gate):
        css = {True: "ok", False: "bad", None: "none"}[v.passed]
        mark = {True: "✔", False: "✘", None: "•"}[v.passed]
        out.append(f'<li class="{css}"><strong>{mark}</strong> {escape(v.line())}</li>')
        out += [f'<li class="none">waived: {escape(w)}</li>' for w in v.waived]
    out.append("</ul>")
    return out


def _baseline_block(diff: Comparison) -> list[str]:
    out = [f'<h2 id="baseline">Since the baseline: {escape(diff.summary())}</h2>']
    for title, changes in (("New failures", diff.new), ("Fixed", diff.fixed)):
        if changes:
            out.append(f"<p><strong>{title}</strong></p><ul>")
            out += [
                f"<li><code>{escape(c.identity)}</code>: {escape(c.check)} — "
                f"{escape(c.evidence)}</li>"
                for c in changes
            ]
            out.append("</ul>")
    return out


def _row(r: FileReport, columns: tuple[str, ...], gate: GateResult | None) -> list[str]:
    waived = (
        {v.check for v in gate.verdicts if v.path == r.path and v.outcome == Outcome.WAIVED}
        if gate is not None and r.failing
        else set()
    )
    member = r.member or r.path.rsplit("/", 1)[-1]
    parse = r.check("parse")
    if parse is not None:
        cells = [f'<td class="fail" colspan="{max(1, len(columns))}">unparseable</td>']
    else:
        cells = []
        for name in columns:
            check = r.check(name)
            if check is None:
                cells.append('<td class="na">n/a</td>')
                continue
            css, label = _CLASS[check.state], _LABEL[check.state]
            if name in waived:
                css, label = "waived", "waived"
            cells.append(f'<td class="{css}">{label}</td>')
    if gate is None:
        scope = '<td class="reported">—</td>'
    elif in_scope(r, gate.scope):
        scope = '<td class="gated">gated</td>'
    else:
        scope = '<td class="reported">reported</td>'
    short = r.origin.split(" (", 1)[0]  # the rest is in the details row
    origin = f" ({escape(short)})" if short else ""
    component = escape(r.component.value)
    kind = f"{r.kind}, {r.arch}, {r.libc}"
    out = [
        f'<tr data-component="{component}"><td class="file">{escape(member)}</td>'
        f'<td class="owner">{component}{origin}<br><small>{escape(kind)}</small></td>'
        f"{scope}{''.join(cells)}</tr>"
    ]
    items = [
        f"<dt>{escape(c.name)}: {_LABEL[c.state]}</dt><dd>{escape(c.evidence)}</dd>"
        for c in r.checks
    ]
    if r.origin:
        items.append(f"<dt>origin</dt><dd>{escape(r.origin)}</dd>")
    if r.source:
        items.append(f"<dt>source</dt><dd>{escape(r.source)}</dd>")
    if r.sha256:
        items.append(f"<dt>sha256</dt><dd>{r.sha256}</dd>")
    for v in gate.verdicts if gate is not None and r.failing else ():
        if v.path == r.path and v.waiver:
            items.append(f"<dt>{escape(v.requirement)} waiver</dt><dd>{escape(v.waiver)}</dd>")
    fix = fix_of(r, gate)
    if fix is not None:
        items.append(f"<dt>owner</dt><dd>{escape(fix.owner)}</dd>")
        items += [f"<dt>fix</dt><dd>{escape(a)}</dd>" for a in fix.actions]
    out.append(
        f'<tr class="details" data-component="{component}"><td colspan="{3 + len(columns)}">'
        f"<details><summary>evidence{', owner and fix' if fix else ''}</summary>"
        f"<dl>{''.join(items)}</dl></details></td></tr>"
    )
    return out


def _table(rows: list[FileReport], fmt: str, gate: GateResult | None) -> list[str]:
    columns, left_out = _columns(fmt, rows)
    width = max(1, len(columns))
    head = "".join(f'<th title="{escape(CHECKS[c])}">{escape(c)}</th>' for c in columns)
    out = [
        f'<table class="matrix" data-format="{escape(fmt)}"><colgroup>'
        '<col style="width:24%"><col style="width:14%"><col style="width:5em">'
        + f'<col style="width:calc(62% / {width})">' * len(columns)
        + "</colgroup>",
        f"<thead><tr><th>{escape(fmt)} file</th><th>component</th><th>gate</th>{head}</tr>"
        "</thead><tbody>",
    ]
    for r in rows:
        out += _row(r, columns, gate)
    out.append("</tbody></table>")
    if left_out:
        out.append(
            f'<p class="note">Not applicable to any file here: {escape(", ".join(left_out))}.</p>'
        )
    return out


def render(
    result: AuditResult,
    gate: GateResult | None,
    *,
    title: str,
    baseline: Comparison | None = None,
) -> str:
    components = sorted({r.component.value for r in result.files})
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Hardening audit: {escape(title)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Hardening audit: {escape(title)}</h1>",
    ]
    if gate is not None:
        css = "ok" if gate.passed else "bad"
        word = "passed" if gate.passed else "failed"
        out.append(
            f'<p id="gate" class="{css}"><strong>Policy gate {word}</strong>: require '
            f"{escape(', '.join(gate.require))}; scope {escape(gate.scope)} "
            f"({escape(SCOPES.get(gate.scope, gate.scope))}): {escape(gate.summary())}</p>"
        )
    out += _verdict_block(result, gate)
    if baseline is not None:
        out += _baseline_block(baseline)
    out.append(
        '<p id="filter"><label>Component: <select id="component">'
        '<option value="all">all</option>'
        + "".join(f'<option value="{escape(c)}">{escape(c)}</option>' for c in components)
        + "</select></label></p>"
    )
    out.append(
        '<p class="legend"><span class="pass">pass</span><span class="fail">FAIL</span>'
        '<span class="na">n/a: the check does not apply to this file</span>'
        '<span class="unknown">?: could not be decided</span>'
        '<span class="waived">waived: fails, accepted by a waiver until its expiry</span>'
        "<br>gate: <strong>gated</strong> = the policy judges this file; reported = shown, "
        "not judged (outside the policy's scope)</p>"
    )
    groups: dict[tuple[str, str], list[FileReport]] = {}
    for r in result.files:
        groups.setdefault((r.artifact or r.path, r.format), []).append(r)
    for (artifact, fmt), rows in groups.items():
        out.append(f"<h2>{escape(artifact)}</h2>")
        out += _table(rows, fmt, gate)
    if result.problems:
        out.append("<h2>Unreadable</h2><ul>")
        out += [
            f"<li><code>{escape(p.path)}</code>: {escape(p.reason)}</li>" for p in result.problems
        ]
        out.append("</ul>")
    if result.not_audited:
        out.append("<h2>Not audited</h2><ul>")
        out += [
            f"<li><code>{escape(n.path)}</code>: {escape(n.reason)}</li>"
            for n in result.not_audited
        ]
        out.append("</ul>")
    out.append(f"<script>{_SCRIPT}</script></body></html>")
    return "\n".join(out) + "\n"
