"""``shouhou keys create|list|revoke``: API keys."""

from __future__ import annotations

from typing import Annotated

import typer

from shouhou.cli.options import DbOption, LangOption, db_url, open_existing
from shouhou.cli.output import actor, console, fail, id_column, speak, table
from shouhou.errors import ActionRefused
from shouhou.times import show, show_optional

keys_app = typer.Typer(help="API keys: create, list, revoke.", no_args_is_help=True)


@keys_app.command("create")
def keys_create(
    principal: Annotated[str, typer.Argument(help="buyer:ID, seller:SHOP, agent:ID or platform")],
    name: Annotated[str, typer.Option(help="What the key is for.")] = "",
    db: DbOption = None,
    lang: LangOption = None,
) -> None:
    """Create an API key; its secret is printed once, only its hash is stored."""
    from shouhou.bootstrap import Engine
    from shouhou.services.keys import create_key

    speak(lang)
    engine = Engine.open(db_url(db))
    try:
        key, token = create_key(engine.uow_factory(), principal, name, engine.clock.now())
    except ActionRefused as exc:
        raise fail(exc.message) from None
    finally:
        engine.close()
    console.print(f"{key.id}  {key.actor}", highlight=False)
    print(token)


@keys_app.command("list")
def keys_list(db: DbOption = None, lang: LangOption = None) -> None:
    """List API keys (never their secrets)."""

    t = speak(lang)
    _ = t.gettext
    engine = open_existing(db)
    try:
        with engine.reader() as uow:
            found = uow.keys.all()
    finally:
        engine.close()
    shown = table(
        id_column(_("id"), [key.id for key in found]),
        _("bound to"),
        _("name"),
        _("starts with"),
        _("created"),
        _("revoked"),
        title=_("API keys"),
    )
    for key in found:
        shown.add_row(
            key.id,
            actor(t, str(key.actor)),
            key.name,
            key.prefix + "…",
            show(key.created_at),
            show_optional(key.revoked_at) or "",
        )
    console.print(shown)


@keys_app.command("revoke")
def keys_revoke(key_id: str, db: DbOption = None, lang: LangOption = None) -> None:
    """Revoke an API key at once; exit 1 if there is no such active key."""

    _ = speak(lang).gettext
    engine = open_existing(db)
    try:
        with engine.uow_factory() as uow:
            done = uow.keys.revoke(key_id, engine.clock.now())
            uow.commit()
    finally:
        engine.close()
    if not done:
        raise fail(_("no active key {key}").format(key=key_id))
    console.print(_("revoked {key}").format(key=key_id), highlight=False)
