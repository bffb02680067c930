"""`tokensrv apply` carried out: the plan's steps (declared_plan.py), each through the act the CLI
uses (operations.py: add_client, update_client, add_user, update_user, set_disabled, remove_*),
each audited with source="apply". Nothing is written for a step without changes: applying the same
file twice writes nothing the second time (no audit line, no client-cache invalidation).

A write that fails midway (the store went away) stops the run: the outcome says which steps were
done and which not, and running apply again completes it (every step is judged afresh).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from redis.exceptions import RedisError

from tokensrv.admin import operations
from tokensrv.admin.claim_rules import set_claim_rules
from tokensrv.admin.declared_plan import Plan, Step
from tokensrv.oauth import Provider
from tokensrv.oauth.clients.fields import MetadataChange
from tokensrv.observability.logs import audit
from tokensrv.store import User


@dataclass
class Outcome:
    done: list[Step] = field(default_factory=list)
    not_done: list[Step] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)  # new clients' generated secrets, shown once
    failure: str | None = None


async def apply_plan(p: Provider, plan: Plan) -> Outcome:
    outcome = Outcome()
    pending = [step for step in plan.steps if step.changes]
    for index, step in enumerate(pending):
        try:
            await _act(p, step, outcome)
        except (RedisError, OSError) as exc:  # the store failed: report, never guess what is left
            outcome.failure = f"the store failed ({type(exc).__name__}) at {step.kind} {step.name}"
        except operations.AdminError as exc:  # changed meanwhile (a client added by hand...)
            outcome.failure = f"{step.kind} {step.name}: {exc}"
        if outcome.failure is not None:
            outcome.not_done = pending[index:]
            return outcome
        outcome.done.append(step)
    return outcome


async def _act(p: Provider, step: Step, outcome: Outcome) -> None:
    if step.kind == "client":
        await _client(p, step, outcome)
    elif step.kind == "user":
        await _user(p, step)
    else:  # the claim rules document, followed by every instance at once
        result = await set_claim_rules(p, step.fields["claims"][1])
        audit("admin.claim_rules_set", version=result["version"], source="apply")


async def _client(p: Provider, step: Step, outcome: Outcome) -> None:
    if step.action == "remove":
        await operations.remove_client(p, step.name)
        await p.store.managed.release("clients", [step.name])
        audit("admin.client_removed", client_id=step.name, source="apply")
        return
    assert step.client is not None
    adopt = step.adopt
    if step.action == "create":
        result = await operations.add_client(p, step.name, step.client.metadata, secret=step.secret)
        if result.get("client_secret") and step.secret is None:
            outcome.secrets[step.name] = result["client_secret"]
        created = await p.store.clients.get_client(step.name)
        adopt = str(created.created_at) if created is not None else None
        audit("admin.client_added", client_id=step.name, public=step.client.record.is_public,
              admin=step.client.metadata.admin, source="apply")
    elif step.action == "update":
        change = MetadataChange({f: getattr(step.client.metadata, f) for f in step.fields})
        await operations.update_client(p, step.name, change)
        audit("admin.client_updated", client_id=step.name, changed=sorted(step.fields), source="apply")
    if adopt:
        await p.store.managed.adopt("clients", {step.name: adopt})


async def _user(p: Provider, step: Step) -> None:
    if step.action == "remove":
        assert isinstance(step.current, User)
        await operations.remove_user(p, step.name)
        await p.store.managed.release("users", [step.current.sub])
        audit("admin.user_removed", sub=step.current.sub, source="apply")
        return
    declared = step.user
    assert declared is not None
    if step.action == "create":
        view = await operations.add_user(p, declared.username, None, declared.email, declared.roles,
                                         declared.groups, declared.attributes)
        sub = view["sub"]
        audit("admin.user_added", sub=sub, source="apply")
        if declared.disabled:
            await operations.set_disabled(p, declared.username, True)
            audit("admin.user_disabled", sub=sub, source="apply")
        await p.store.managed.adopt("users", {sub: declared.username})
        return
    assert isinstance(step.current, User)
    sub = step.current.sub
    if set(step.fields) - {"disabled"}:
        await operations.update_user(p, step.name, _user_change(step.current, step))
        audit("admin.user_updated", sub=sub, changed=sorted(set(step.fields) - {"disabled"}), source="apply")
    if "disabled" in step.fields:
        disabled = bool(step.fields["disabled"][1])
        await operations.set_disabled(p, step.name, disabled)
        audit("admin.user_disabled" if disabled else "admin.user_enabled", sub=sub, source="apply")
    if step.adopt:
        await p.store.managed.adopt("users", {sub: step.adopt})


def _user_change(current: User, step: Step) -> operations.UserChange:
    """The fields the plan changes as a change of the user: roles and groups added and removed,
    attributes set and unset, on the record as it is when written (update_user's WATCH loop), so a
    concurrent change of another field stays."""
    declared = step.user
    assert declared is not None
    change = operations.UserChange()
    if "email" in step.fields:
        change = replace(change, email=declared.email, unset_email=declared.email is None)
    for name in ("roles", "groups"):
        if name in step.fields:
            old, new = getattr(current, name), getattr(declared, name)
            lists: dict[str, Any] = {f"add_{name}": tuple(v for v in new if v not in old),
                                     f"remove_{name}": tuple(v for v in old if v not in new)}
            change = replace(change, **lists)
    if "attributes" in step.fields:
        attributes = dict(current.attributes)
        change = replace(change, attributes=tuple((k, v) for k, v in declared.attributes.items()
                                                  if attributes.get(k) != v),
                         unset_attributes=tuple(k for k in attributes if k not in declared.attributes))
    return change


def outcome_view(plan: Plan, outcome: Outcome | None) -> dict[str, Any]:
    """The plan and what became of it, for --json (secrets only here, once)."""
    view: dict[str, Any] = {"changes": [s.view() for s in plan.steps], "summary": plan.summary(),
                            "applied": outcome is not None and outcome.failure is None}
    if outcome is not None:
        view["secrets"] = dict(outcome.secrets)
        if outcome.failure is not None:
            view["failure"] = outcome.failure
            view["not_done"] = [f"{s.kind} {s.name}: {s.action}" for s in outcome.not_done]
    return view
