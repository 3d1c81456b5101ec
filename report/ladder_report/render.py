"""Assemble the report: sections of text, tables and figures, written as Markdown (figures as
PNG files beside it) and as one self-contained HTML file (figures embedded as base64)."""

from __future__ import annotations

import base64
import html
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ladder_api.frontier import frontier_words
from ladder_api.grid import ADHERENCE, CLIP_SCORE, fid_features_of
from ladder_report import analysis, plots
from ladder_report.analysis import Table
from ladder_report.labels import label
from ladder_report.load import ReportData

FIGURES_DIR = "report_files"


@dataclass
class Figure:
    name: str
    png: bytes
    caption: str


@dataclass
class Section:
    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    code: str | None = None


def _fig(sections_figs: list[Figure], name: str, png: bytes | None, caption: str) -> None:
    if png is not None:
        sections_figs.append(Figure(name, png, caption))


def build_sections(data: ReportData) -> list[Section]:
    results = data.results
    fid_metric = analysis.fid_metric_of(results)
    sections: list[Section] = []
    status = data.status
    phase = status.phase.value if status else "unknown"
    done = sum(1 for s in status.sizes if s.phase.value == "Succeeded") if status else 0

    head = Section("Summary")
    head.paragraphs.append(
        f"Experiment **{data.name}**: {phase}, {done} of {len(data.runs)} sizes trained and evaluated, "
        f"{len(results)} measurements recorded"
        + (f" ({len(data.failed)} more failed: see Failed measurements)" if data.failed else "")
        + f". Run directory: `{data.out_dir}`."
    )
    headline = analysis.adherence_headline(results, data.runs)
    if headline is not None:
        head.paragraphs.append(headline.sentence())
    evaluation = data.runs[0].evaluation if data.runs else None
    summary = analysis.summary_of(results, len(data.runs), evaluation, all_views=True)
    if summary.best_fid is not None:
        head.paragraphs.append(
            f"Best {label(summary.fid_metric).short} ({analysis.view_label(summary.frontier_sampler)}): "
            f"{summary.best_fid:.3f} (c{summary.best_width})."
        )
    if not results:
        head.paragraphs.append("No measurements have been recorded yet; the sections below fill in as "
                               "sizes are evaluated.")
    sections.append(head)

    metrics = analysis.metrics_present(results)
    if metrics:
        sections.append(Section(
            "What the metrics measure",
            paragraphs=[f"**{label(m).short}** (`{m}`): {label(m).long}" for m in metrics],
        ))

    ladder = Section("The ladder", tables=[analysis.ladder_table(data.runs, data.metrics)])
    _fig(ladder.figures, "loss_curves", plots.loss_curves(data.metrics),
         "Training loss per size (faint: every logged step; solid: running mean of 5 logged steps).")
    sections.append(ladder)

    if fid_metric:
        points = analysis.curve_points(results, fid_metric, summary.best_of_guidance or None)
        cost_sec = Section("FID against sampling cost", paragraphs=[
            "The paper's Figure 9 view. Each point is one sampler at one step count, at the guidance scale "
            "that gave the best FID there; each curve is one size. Cost is the normalized model cost "
            f"times sampling steps. Metric: {label(fid_metric).long}"
        ])
        _fig(cost_sec.figures, "fid_vs_cost", plots.fid_vs_cost(points, fid_metric),
             f"{label(fid_metric).short} against sampling cost per size and sampler.")
        cost_sec.tables.append(analysis.best_per_size_table(results, fid_metric))
        sections.append(cost_sec)

        guided = analysis.summary_with_guidance_cost(results, len(data.runs), evaluation)
        front = Section("The frontier", paragraphs=[
            "What this run's results say, generated from them: " + " ".join(frontier_words(summary)),
            f"The headline view is {analysis.view_label(summary.frontier_sampler)} "
            "(evaluation.frontierSamplers; the paper's Figure 9 is DDIM). The other samplers' frontiers "
            "and the pooled one follow it (the paper's Figure 11 compares samplers)."
        ], tables=[
            analysis.frontier_table(summary), analysis.pareto_table(summary),
            analysis.frontier_table(guided, with_guidance=True),
            *[analysis.frontier_table(summary, view=v) for v in summary.views[1:]],
        ])
        chosen = [r for r in analysis.newest_only(results) if r.metric == fid_metric]
        _fig(front.figures, "frontier", plots.frontier_plot(chosen, summary.frontier, fid_metric),
             "Best size per sampling budget: dots are all measurements, the step line the frontier.")
        sections.append(front)
        predicted = analysis.prediction_table(results, data.runs, fid_metric, summary.confidence or 0.95)
        if predicted is not None:
            table, words = predicted
            sections.append(Section("Prediction for sizes still training (not measured)",
                                    paragraphs=words, tables=[table]))

    sweep_metrics = [m for m in metrics if fid_features_of(m)]
    sweep_metrics += [m for m in (ADHERENCE, CLIP_SCORE) if m in metrics]
    if sweep_metrics:
        sweep = Section("Guidance sweeps")
        newest = analysis.newest_only(results)
        _fig(sweep.figures, "guidance", plots.guidance_sweep(newest, sweep_metrics),
             "Each metric against the classifier-free guidance scale, at the largest step count.")
        sweep.tables = [analysis.guidance_sweep_table(results, m) for m in sweep_metrics]
        sections.append(sweep)

    sections.append(_samples_section(data))
    sections.append(_settings_section(data))
    if results:
        sections.append(Section("All measurements", tables=[analysis.results_table(results)]))
    if data.failed:
        sections.append(Section("Failed measurements", tables=[analysis.failed_table(data.failed)]))
    return sections


def _samples_section(data: ReportData) -> Section:
    sec = Section("Samples at equal sampling cost")
    costs = {run.width: run.model.normalized_cost for run in data.runs}
    pick = analysis.equal_cost_samples(data.samples, costs)
    if pick is None:
        sec.paragraphs.append(
            "No sample images were found under the sizes' `samples/` folders (the evaluator writes them "
            "there as .npz files), so there is no grid."
        )
        return sec
    rows = []
    for width, s, _ in pick.picks:
        caption = f"c{width}\n{s.sampler} {s.steps} st\ng={s.guidance:g}"
        rows.append((caption, s.images, s.labels))
    same = (f" All rows use {pick.sampler} at guidance {pick.guidance:g}." if pick.sampler else "")
    sec.paragraphs.append(
        f"One row per size, each at the sampling setting whose cost is closest to {pick.target_cost:.4g} "
        "(normalized model cost x steps): smaller sizes get more sampling steps for the same budget."
        + same + " Column titles are the prompted digits."
    )
    _fig(sec.figures, "samples", plots.sample_grid(rows), "Generated digits per size at equal sampling cost.")
    sec.tables.append(Table(
        "Settings of the sample rows",
        ["size", "sampler", "steps", "guidance", "cost", "checkpoint", "file"],
        [[f"c{w}", s.sampler, str(s.steps), f"{s.guidance:g}", f"{c:.4g}",
          str(s.checkpoint_step) if s.checkpoint_step is not None else "-",
          str(s.path).removeprefix(f"{data.out_dir}/")]
         for w, s, c in pick.picks],
    ))
    return sec


def _settings_section(data: ReportData) -> Section:
    run = data.runs[0]
    shared = {
        "ladder (shared by every size)": {k: v for k, v in run.model.to_wire().items()
                                          if k not in ("baseChannels", "params", "gflopsPerForward",
                                                       "normalizedCost")},
        "widths": [r.width for r in data.runs],
        "data": run.data.to_wire(),
        "training": run.training.to_wire(),
        "evaluation": run.evaluation.to_wire(),
        "specHash": run.spec_hash,
        "codeVersion": run.code_version,
    }
    sec = Section("Exact settings", paragraphs=[
        "The resolved settings every size was trained and evaluated with (from the run configs in "
        "`configs/`, the same files the trainer and evaluator read)."
    ], code=yaml.safe_dump(shared, sort_keys=False, width=100))
    digest = analysis.settings_digest(data.results)
    if digest.shared or digest.varying:
        rows = [[k, v] for k, v in digest.shared.items()]
        rows += [[k, ", ".join(v)] for k, v in digest.varying.items()]
        sec.tables.append(Table("Settings recorded with the measurements", ["setting", "value(s)"], rows,
                                "As each Result's `settings` records them."))
    return sec


# --- writers --------------------------------------------------------------------------------


def _md_table(t: Table) -> str:
    def cell(s: str) -> str:
        return s.replace("|", "\\|").replace("\n", " ")

    lines = [f"**{t.title}**", "", "| " + " | ".join(cell(h) for h in t.headers) + " |",
             "|" + "|".join("---" for _ in t.headers) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in t.rows]
    if not t.rows:
        lines.append("| " + " | ".join("-" for _ in t.headers) + " |")
    if t.note:
        lines += ["", f"*{t.note}*"]
    return "\n".join(lines)


def to_markdown(title: str, sections: list[Section], figures_dir: str, generated: str) -> str:
    out = [f"# {title}", "", f"*Generated by `ladder report` at {generated}.*", ""]
    for sec in sections:
        out += [f"## {sec.title}", ""]
        for p in sec.paragraphs:
            out += [p, ""]
        for fig in sec.figures:
            out += [f"![{fig.caption}]({figures_dir}/{fig.name}.png)", "", f"*{fig.caption}*", ""]
        for t in sec.tables:
            out += [_md_table(t), ""]
        if sec.code:
            out += ["```yaml", sec.code.rstrip(), "```", ""]
    return "\n".join(out)


def _inline_md(text: str) -> str:
    """The little Markdown the paragraphs use (**bold**, `code`), escaped for HTML."""
    import re

    s = html.escape(text)
    s = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", s)
    s = re.sub(r"`(.+?)`", r"<code>\1</code>", s)
    return s


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1000px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{border-bottom:2px solid #444}h2{border-bottom:1px solid #ccc;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.88em}
th,td{border:1px solid #ccc;padding:.25em .55em;text-align:left}th{background:#f2f2f2}
tr:nth-child(even) td{background:#fafafa}
.note{color:#555;font-size:.85em;font-style:italic}figure{margin:1em 0}
figcaption{color:#555;font-size:.85em}img{max-width:100%}
pre{background:#f6f6f6;padding:.8em;overflow-x:auto;font-size:.82em}
"""


def to_html(title: str, sections: list[Section], generated: str) -> str:
    out = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
           f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
           f"<h1>{html.escape(title)}</h1>",
           f"<p class=\"note\">Generated by <code>ladder report</code> at {html.escape(generated)}.</p>"]
    for sec in sections:
        out.append(f"<h2>{html.escape(sec.title)}</h2>")
        out += [f"<p>{_inline_md(p)}</p>" for p in sec.paragraphs]
        for fig in sec.figures:
            b64 = base64.b64encode(fig.png).decode()
            out.append(f"<figure><img alt=\"{html.escape(fig.caption)}\" src=\"data:image/png;base64,{b64}\">"
                       f"<figcaption>{html.escape(fig.caption)}</figcaption></figure>")
        for t in sec.tables:
            out.append(f"<h3>{html.escape(t.title)}</h3><table><thead><tr>"
                       + "".join(f"<th>{html.escape(h)}</th>" for h in t.headers) + "</tr></thead><tbody>")
            out += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in t.rows]
            out.append("</tbody></table>")
            if t.note:
                out.append(f"<p class=\"note\">{html.escape(t.note)}</p>")
        if sec.code:
            out.append(f"<pre>{html.escape(sec.code)}</pre>")
    out.append("</body></html>")
    return "\n".join(out)


@dataclass
class ReportPaths:
    markdown: Path
    html: Path
    figures: Path


def write(data: ReportData, out_dir: Path | None = None) -> ReportPaths:
    target = Path(out_dir or data.out_dir)
    sections = build_sections(data)
    generated = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    title = f"Ladder report: {data.name}"
    figs = target / FIGURES_DIR
    figs.mkdir(parents=True, exist_ok=True)
    for sec in sections:
        for fig in sec.figures:
            (figs / f"{fig.name}.png").write_bytes(fig.png)
    md = target / "report.md"
    md.write_text(to_markdown(title, sections, FIGURES_DIR, generated))
    page = target / "report.html"
    page.write_text(to_html(title, sections, generated))
    return ReportPaths(md, page, figs)
