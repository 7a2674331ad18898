"""How the ``paas`` command shows things: tables (rich on a terminal, aligned plain text off
one), JSON, JSON lines, and the progress of a wait."""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

import click
from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from bigdata_paas.client.api import NO_ERROR, Client, ClientError, Event, Instance

OUTPUTS = ("table", "json", "jsonl")

STATUS_STYLES = {
    "running": "bold green",
    "failed": "bold red",
    "destroyed": "dim",
    "destroying": "yellow",
    "queued": "yellow",
}


class Output:
    """Where and how one command prints: ``mode`` is table, json or jsonl."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.console = Console(highlight=False)
        self.terminal = self.console.is_terminal

    def json(self, value: Any) -> None:
        """The value as JSON (json), or one JSON line per item of a list (jsonl)."""
        if self.mode == "jsonl":
            for item in value if isinstance(value, list) else [value]:
                click.echo(json.dumps(item, separators=(",", ":")))
        else:
            click.echo(json.dumps(value, indent=2))

    def line(self, value: Any) -> None:
        """One JSON line, whatever the mode (what a follow prints as it goes)."""
        click.echo(json.dumps(value, separators=(",", ":")), nl=True)

    def table(self, columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str = "") -> None:
        rows = [["" if cell is None else str(cell) for cell in row] for row in rows]
        if self.terminal:
            table = Table(*columns, box=box.SIMPLE_HEAD, title=title or None, title_justify="left")
            for row in rows:
                table.add_row(*(_styled(columns[i], cell) for i, cell in enumerate(row)))
            self.console.print(table)
            return
        # Off a terminal: one line a row, columns aligned with spaces, nothing cut or wrapped.
        if title:
            click.echo(title)
        widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
        for row in [list(columns), *rows]:
            click.echo("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())

    def fields(self, pairs: Iterable[tuple[str, Any]]) -> None:
        """Name/value lines, for one object."""
        pairs = [(name, value) for name, value in pairs if value not in (None, "", [], {})]
        width = max((len(name) for name, _ in pairs), default=0)
        for name, value in pairs:
            shown = value if isinstance(value, str) else json.dumps(value)
            if self.terminal:
                self.console.print(
                    Text.assemble((name.ljust(width), "bold"), "  ", _styled(name, shown))
                )
            else:
                click.echo(f"{name.ljust(width)}  {shown}")


def _styled(column: str, cell: str) -> Text:
    """A cell as plain text (never rich markup: a message may hold "[...]"), coloured when
    it is a status."""
    if column.lower() == "status" and cell in STATUS_STYLES:
        return Text(cell, style=STATUS_STYLES[cell])
    return Text(cell)


def error(message: str) -> None:
    click.echo(f"error: {message}", err=True)


def short_time(at: str | None) -> str:
    """``2026-12-04T17:01:02.123456Z`` -> ``17:01:02``."""
    return (at or "")[11:19]


def event_line(event: Event) -> str:
    """A plain timestamped line of an event (what a wait prints off a terminal)."""
    return f"{event['at']}  {event['status']:<10}  {event['step']:<8}  {event['message']}"


def show_instance(out: Output, instance: Instance) -> None:
    """An instance in full: its fields, then its nodes."""
    if out.mode != "table":
        out.json(instance)
        return
    error_ = instance.get("error") or NO_ERROR
    out.fields(
        [
            ("id", instance.get("id")),
            ("name", instance.get("name")),
            ("service", f"{instance.get('service')} {instance.get('version')}"),
            ("user", instance.get("user")),
            ("status", instance.get("status")),
            ("waiting for", instance.get("waiting_for")),
            ("failed at", error_.get("step")),
            ("reason", error_.get("reason")),
            ("options", instance.get("options")),
            ("created", instance.get("created_at")),
            ("updated", instance.get("updated_at")),
        ]
    )
    nodes = instance.get("nodes") or []
    if nodes:
        out.table(
            ("NODE", "HOST", "ADDRESS", "CPU", "MEM", "DISKS"),
            [
                (
                    n.get("name"),
                    n.get("host") or "-",
                    n.get("address") or "-",
                    n.get("cpu"),
                    n.get("mem"),
                    len(n.get("disks") or []),
                )
                for n in nodes
            ],
        )


class Progress:
    """What a wait shows as events come: a live display on a terminal (status, step, why it
    waits, nodes, the latest events), plain timestamped lines off one, JSON lines with
    ``-o jsonl``, nothing with ``-o json`` (the final instance only)."""

    RECENT = 8

    def __init__(self, out: Output, client: Client, instance: Instance, goal: str) -> None:
        self.out, self.client, self.goal = out, client, goal
        self.instance = instance
        self.status, self.step = instance.get("status", "?"), ""
        self.recent: deque[Event] = deque(maxlen=self.RECENT)
        self.started = time.monotonic()
        self.live: Live | None = None
        self.notice = ""
        self.outcome: str | None = None

    def __enter__(self) -> Progress:
        if self.out.mode == "table" and self.out.terminal:
            self.live = Live(
                get_renderable=self.render,
                console=self.out.console,
                refresh_per_second=8,
            )
            self.live.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self, outcome: str | None = None) -> None:
        """Stop the live display; its last frame stays, marked with ``outcome`` (the final
        status) instead of the spinner."""
        if self.live is not None:
            self.outcome = outcome or "stopped"
            self.live.refresh()
            self.live.stop()
            self.live = None

    def event(self, event: Event) -> None:
        changed = event["status"] != self.status
        self.status, self.step = event["status"], event["step"]
        self.notice = ""
        self.recent.append(event)
        if self.out.mode == "jsonl":
            self.out.line(event)
        elif self.out.mode == "table" and self.live is None:
            click.echo(event_line(event))
        if self.live is not None and (changed or event["status"] == "queued"):
            try:  # nodes, hosts and the queue's reason are on the instance
                self.instance = self.client.instance(self.instance["id"])
            except ClientError:
                pass

    def reconnecting(self, problem: Exception) -> None:
        message = f"connection lost ({type(problem).__name__}); resuming"
        if self.live is not None:
            self.notice = message
        elif self.out.mode == "table":
            click.echo(f"# {message}", err=True)

    def render(self) -> Group:
        instance = self.instance
        elapsed = int(time.monotonic() - self.started)
        style = STATUS_STYLES.get(self.status, "bold")
        head = Text.assemble(
            (instance.get("name") or instance.get("id", ""), "bold"),
            "  ",
            (self.status, style),
            f"  {self.step}" if self.step else "",
            f"  {elapsed // 60}:{elapsed % 60:02d}",
            (f"  (waiting until {self.goal})", "dim"),
        )
        if self.outcome is None:
            parts: list[Any] = [Spinner("dots", text=head)]
        else:
            mark = "✔" if self.outcome == self.goal else "✘"
            parts = [Text.assemble((mark, STATUS_STYLES.get(self.outcome, "bold")), " ", head)]
        if self.status == "queued" and instance.get("waiting_for"):
            parts.append(Text(f"  waiting for: {instance['waiting_for']}", style="yellow"))
        if self.notice:
            parts.append(Text(f"  {self.notice}", style="dim"))
        nodes = instance.get("nodes") or []
        if nodes:
            table = Table("node", "host", "address", box=box.SIMPLE, padding=(0, 1))
            for node in nodes:
                table.add_row(*(Text(str(node.get(k) or "-")) for k in ("name", "host", "address")))
            parts.append(table)
        for event in self.recent:
            parts.append(
                Text.assemble(
                    f"  {short_time(event['at'])} ",
                    (f"{event['status']:<10}", STATUS_STYLES.get(event["status"], "")),
                    f" {event['step']:<8} {event['message']}",
                )
            )
        return Group(*parts)
