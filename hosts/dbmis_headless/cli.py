"""The ``dbmis`` command: every clerk and administrator operation from a shell.

Plugins add commands through the ``dbmis_cli_commands`` hook; they are looked up only when asked for,
and heavy modules (SQLAlchemy, card drivers) load inside the commands, so ``--help`` stays fast.
"""

from __future__ import annotations

import os
import sys

import click

from dbmis_core.errors import DbmisError

from dbmis_core.clikit import emit

CORE_COMMANDS = {
    "init": "dbmis_headless.commands:init_cmd",
    "demo": "dbmis_headless.commands:demo_cmd",
    "customer": "dbmis_headless.commands:customer_group",
    "meter": "dbmis_headless.commands:meter_group",
    "card": "dbmis_headless.commands:card_group",
    "quote": "dbmis_headless.commands:quote_cmd",
    "vend": "dbmis_headless.commands:vend_cmd",
    "sales": "dbmis_headless.commands:sales_cmd",
    "reconcile": "dbmis_headless.commands:reconcile_cmd",
    "plugins": "dbmis_headless.commands:plugins_cmd",
    "reader": "dbmis_headless.reader_commands:reader_group",
    "operator": "dbmis_headless.operator_commands:operator_group",
}

SHORT_HELP = {
    "init": "Create or upgrade the database, card keys and first administrator.",
    "demo": "Seed a demo utility (regions, customers, meters, a clerk).",
    "customer": "Add, show and find customers.",
    "meter": "Add meters to the store and install them.",
    "card": "Issue and read cards; write service cards, import their data.",
    "quote": "Show the energy an amount buys, without selling.",
    "vend": "Sell electricity onto the card in the reader.",
    "sales": "List a customer's sales.",
    "reconcile": "Settle unfinished sales with the card in the reader.",
    "plugins": "List installed plugins and their state.",
    "reader": "Card reader state, readers and insert/remove events.",
    "operator": "Operators: add, deactivate, reset, roles, unlock; your own password (passwd).",
}


class LazyGroup(click.Group):
    """Loads core commands by import path and plugin commands from the plugin manager on demand."""

    def list_commands(self, ctx):
        names = set(CORE_COMMANDS)
        app = self._app(ctx)
        if app is not None:
            try:
                names |= set(app.pm.cli_commands())
            except DbmisError:
                pass
        return sorted(n for n in names if not self._extends(n, names))

    @staticmethod
    def _extends(name: str, names) -> bool:
        """A plugin command named ``GROUP-SUB`` adds ``SUB`` to the group ``GROUP`` when it exists
        (``card-reissue`` is ``dbmis card reissue``), so plugins extend core and plugin groups."""
        return any(name.startswith(g + "-") for g in names if g != name)

    def get_command(self, ctx, name):
        if name in CORE_COMMANDS:
            module, attr = CORE_COMMANDS[name].split(":")
            import importlib

            cmd = getattr(importlib.import_module(module), attr)
        else:
            app = self._app(ctx)
            spec = app.pm.cli_commands().get(name) if app is not None else None
            cmd = spec.factory() if spec else None
        if isinstance(cmd, click.Group):
            self._attach(ctx, name, cmd)
        return cmd

    def _attach(self, ctx, name: str, group: click.Group) -> None:
        app = self._app(ctx)
        if app is None:
            return
        try:
            specs = app.pm.cli_commands()
        except DbmisError:
            return
        for full, spec in specs.items():
            sub = full[len(name) + 1:]
            if full.startswith(name + "-") and sub not in group.commands:
                group.add_command(spec.factory(), sub)

    def format_commands(self, ctx, formatter):
        """Help lists core commands from a table (no imports) and plugin commands by name."""
        rows = [(n, SHORT_HELP[n]) for n in sorted(CORE_COMMANDS)]
        app = self._app(ctx)
        if app is not None:
            try:
                names = set(CORE_COMMANDS) | set(app.pm.cli_commands())
                rows += [(n, "(plugin command)") for n in sorted(app.pm.cli_commands())
                         if not self._extends(n, names)]
            except DbmisError as exc:
                rows.append(("", f"plugins unavailable: {exc}"))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    @staticmethod
    def _app(ctx):
        root = ctx.find_root()
        if root.obj is None:
            from dbmis_core.app import Application
            from dbmis_core.config import Config

            try:
                root.obj = Application(Config.load(root.params.get("config")))
            except DbmisError:
                return None
        return root.obj


def _operator_provider(app, login: str | None, password: str | None):
    cache = {}

    def provide():
        if "op" not in cache:
            user = login or os.environ.get("DBMIS_OPERATOR")
            if not user:
                if not sys.stdin.isatty():
                    raise DbmisError("log in with --operator NAME (or DBMIS_OPERATOR) and a password "
                                     "(DBMIS_PASSWORD)")
                user = click.prompt("Operator")
            pw = password if password is not None else os.environ.get("DBMIS_PASSWORD")
            if pw is None:
                if not sys.stdin.isatty():
                    raise DbmisError("no password given; set DBMIS_PASSWORD or run interactively")
                pw = click.prompt("Password", hide_input=True)
            op = app.login(user, pw)
            if op.must_change_password:
                raise DbmisError(f"operator {op.login} must change the password before anything "
                                 "else: run 'dbmis operator passwd'")
            cache["op"] = op
        return cache["op"]

    return provide


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config", type=click.Path(dir_okay=False), envvar="DBMIS_CONFIG",
              help="Configuration file (TOML).")
@click.option("--operator", "-u", "operator", help="Operator login (or DBMIS_OPERATOR).")
@click.option("--password", "password", help="Operator password (or DBMIS_PASSWORD; else asked).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")
@click.pass_context
def cli(ctx, config, operator, password, as_json):
    """DBMIS - prepaid electricity meter information management (headless host)."""
    if ctx.obj is None:
        from dbmis_core.app import Application
        from dbmis_core.config import Config

        ctx.obj = Application(Config.load(config))
    ctx.obj.operator_provider = _operator_provider(ctx.obj, operator, password)
    ctx.call_on_close(ctx.obj.close)


def main(argv=None) -> int:
    try:
        cli.main(args=argv, prog_name="dbmis", standalone_mode=False)
    except DbmisError as exc:
        click.echo(f"error: {exc}", err=True)
        return 1
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except Exception as exc:  # last line of defence: a one-line message, not a traceback
        from sqlalchemy.exc import SQLAlchemyError

        if isinstance(exc, SQLAlchemyError):
            click.echo(f"error: database: {getattr(exc, 'orig', exc)}", err=True)
            return 1
        raise
    return 0


def run() -> None:
    sys.exit(main())


__all__ = ["cli", "main", "run", "emit"]
