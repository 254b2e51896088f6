"""The audit as one self-contained HTML page: a matrix of native files (grouped by
artifact) against checks, each cell coloured and labelled (pass / FAIL / n/a / ?) with
the evidence on hover, the policy outcome on top, and a filter by component. No server,
no external files; it works with scripts off (the filter is the only script; a link
ending in ``#component=wheel`` opens the page filtered)."""

from __future__ import annotations

from html import escape

from .findings import ALL_CHECKS, State
from .policy import GateResult, Outcome
from .report import CHECKS
from .run import AuditResult

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#111}
h1{font-size:1.4em} table{border-collapse:collapse;margin:1em 0}
th,td{border:1px solid #bbb;padding:.2em .45em;text-align:center;white-space:nowrap}
th.file,td.file{text-align:left;font-family:monospace;white-space:normal;max-width:38em}
tr.artifact td{background:#e8e8f0;font-weight:bold;text-align:left}
td.pass{background:#c8ecc8} td.fail{background:#f6b8b8;font-weight:bold}
td.na{background:#eee;color:#777} td.unknown{background:#fbe7a6}
td.waived{background:#cfe0f7} .gate-pass{color:#176117} .gate-fail{color:#a11}
.legend span{display:inline-block;padding:0 .5em;margin-right:.4em;border:1px solid #bbb}
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
"""

_LABEL = {State.PASS: "pass", State.FAIL: "FAIL", State.NOT_APPLICABLE: "n/a", State.UNKNOWN: "?"}
_CLASS = {
    State.PASS: "pass",
    State.FAIL: "fail",
    State.NOT_APPLICABLE: "na",
    State.UNKNOWN: "unknown",
}


def render(result: AuditResult, gate: GateResult | None, *, title: str) -> str:
    verdicts = gate.verdicts if gate is not None else ()
    waived = {(v.path, v.check) for v in verdicts if v.outcome == Outcome.WAIVED}
    components = sorted({r.component.value for r in result.files})
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Hardening audit: {escape(title)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Hardening audit: {escape(title)}</h1>",
    ]
    if gate is not None:
        css = "gate-pass" if gate.passed else "gate-fail"
        word = "passed" if gate.passed else "failed"
        out.append(
            f'<p id="gate" class="{css}"><strong>Policy gate {word}</strong>: require '
            f"{escape(', '.join(gate.require))}, scope {escape(gate.scope)}: "
            f"{escape(gate.summary())}</p>"
        )
        if gate.failures:
            out.append("<ul>")
            out += [
                f"<li><code>{escape(v.path)}</code>: {escape(v.requirement)} — "
                f"{escape(v.evidence)} {escape(v.waiver)}</li>"
                for v in gate.failures
            ]
            out.append("</ul>")
    out.append(
        '<p><label>Component: <select id="component"><option value="all">all</option>'
        + "".join(f'<option value="{escape(c)}">{escape(c)}</option>' for c in components)
        + "</select></label></p>"
    )
    out.append(
        '<p class="legend"><span class="pass">pass</span><span class="fail">FAIL</span>'
        '<span class="na">n/a: not applicable</span><span class="unknown">?: unknown</span>'
        '<span class="waived">waived</span></p>'
    )
    header = "".join(f'<th title="{escape(CHECKS[c])}">{escape(c)}</th>' for c in ALL_CHECKS)
    out.append(
        '<table id="matrix"><thead><tr><th class="file">file</th><th>component</th>'
        f"<th>kind</th><th>arch</th>{header}</tr></thead><tbody>"
    )
    current = None
    span = 4 + len(ALL_CHECKS)
    for r in result.files:
        if r.artifact != current:
            current = r.artifact
            out.append(f'<tr class="artifact"><td colspan="{span}">{escape(current)}</td></tr>')
        member = r.path[len(r.artifact) + 1 :] if "!" in r.path else r.path.rsplit("/", 1)[-1]
        cells = []
        parse = r.check("parse")
        for name in ALL_CHECKS:
            check = r.check(name)
            if parse is not None:
                cells.append(f'<td class="fail" title="{escape(parse.evidence)}">unparseable</td>')
                break
            if check is None:
                cells.append('<td class="na" title="not a check of this format">—</td>')
                continue
            css, label = _CLASS[check.state], _LABEL[check.state]
            if (r.path, name) in waived:
                css, label = "waived", "waived"
            cells.append(f'<td class="{css}" title="{escape(check.evidence)}">{label}</td>')
        if parse is not None:
            cells.append(f'<td colspan="{len(ALL_CHECKS) - 1}"></td>')
        origin = f" ({escape(r.origin)})" if r.origin else ""
        out.append(
            f'<tr data-component="{escape(r.component.value)}"><td class="file">'
            f"{escape(member)}</td><td>{escape(r.component.value)}{origin}</td>"
            f"<td>{escape(r.kind)}</td><td>{escape(r.arch)}</td>{''.join(cells)}</tr>"
        )
    out.append("</tbody></table>")
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
