"""Branch-bound admin credentials act on their branch's lineage only (memory and redis): an admin
key or JWT bound to br-child creates keys and branches at or below br-child, sees and changes only
the keys and branches there, and never reaches an unbound key, an ancestor or a sibling. Unbound
account admins and the operator keep their whole reach."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.support.gateway import Live
from tests.test_jwt import jwt_gateway, token  # noqa: F401  (jwt_gateway is a fixture)

ADMIN = ["ai_gateway:admin"]
INVOKE = ["ai_gateway:invoke"]


@dataclass
class Tree:
    """br-root -> br-child -> br-grandchild, and br-other beside br-child, with their keys."""

    account: str
    account_admin: dict[str, Any]  # unbound admin key: {"id", "key", ...}
    child_admin: dict[str, Any]  # admin key bound to br-child
    keys: dict[str, dict[str, Any]]  # an invoke key bound to each branch, by branch


async def _key(gateway: Live, account: str, branch: str | None, scopes: list[str]) -> Any:
    status, body = await gateway.admin(
        "POST", "/keys", {"account": account, "branch": branch, "scopes": scopes}
    )
    assert status == 201, body
    return body


async def _tree(gateway: Live, account: str | None = None) -> Tree:
    root = await gateway.tenant(account=account, branch="br-root")
    for branch, parent in [
        ("br-child", "br-root"),
        ("br-grandchild", "br-child"),
        ("br-other", "br-root"),
    ]:
        status, body = await gateway.admin(
            "POST", f"/accounts/{root.account}/branches", {"id": branch, "parent": parent}
        )
        assert status == 201, body
    keys = {"br-root": {"id": root.key_id, "key": root.key}}
    for branch in ("br-child", "br-grandchild", "br-other"):
        keys[branch] = await _key(gateway, root.account, branch, INVOKE)
    return Tree(
        account=root.account,
        account_admin=await _key(gateway, root.account, None, ADMIN),
        child_admin=await _key(gateway, root.account, "br-child", ADMIN),
        keys=keys,
    )


def _refused_as_wider(answer: Any, param: str) -> None:
    error = answer["error"]
    assert error["code"] == "branch_not_allowed" and error["param"] == param, error
    assert "bound to branch br-child" in error["message"], error


async def _branch_ids(gateway: Live, account: str, token: str | None = None) -> set[str]:
    extra = {} if token is None else {"token": token}
    status, listed = await gateway.admin("GET", f"/accounts/{account}/branches", **extra)
    assert status == 200, listed
    return {b["id"] for b in listed["data"]}


async def test_a_branch_bound_admin_creates_keys_at_or_below_its_branch_only(
    gateway: Live,
) -> None:
    tree = await _tree(gateway)
    child = tree.child_admin["key"]
    # Wider than itself: unbound (an admin key, as in the issue, or an invoke key), an
    # ancestor, a sibling; a branch that does not exist is refused the same way.
    for branch, scopes in [
        (None, ADMIN),
        (None, INVOKE),
        ("br-root", INVOKE),
        ("br-other", ADMIN),
        ("br-nowhere", INVOKE),
    ]:
        body = {"account": tree.account, "branch": branch, "scopes": scopes}
        status, answer = await gateway.admin("POST", "/keys", body, token=child)
        assert status == 403, (branch, answer)
        _refused_as_wider(answer, "branch")
    status, listed = await gateway.admin("GET", f"/keys?account={tree.account}")
    assert len(listed["data"]) == 6  # nothing was created
    for branch in ("br-child", "br-grandchild"):
        body = {"account": tree.account, "branch": branch, "scopes": ADMIN}
        status, made = await gateway.admin("POST", "/keys", body, token=child)
        assert status == 201 and made["branch"] == branch, made


async def test_a_branch_bound_admin_creates_branches_below_its_branch_only(
    gateway: Live,
) -> None:
    tree = await _tree(gateway)
    child = tree.child_admin["key"]
    path = f"/accounts/{tree.account}/branches"
    for parent in (None, "br-root", "br-other", "br-nowhere"):
        status, answer = await gateway.admin("POST", path, {"id": "br-x", "parent": parent}, child)
        assert status == 403, (parent, answer)
        _refused_as_wider(answer, "parent")
    assert "br-x" not in await _branch_ids(gateway, tree.account)
    for new, parent in (("br-x", "br-child"), ("br-y", "br-grandchild")):
        status, made = await gateway.admin("POST", path, {"id": new, "parent": parent}, child)
        assert status == 201 and made["parent"] == parent, made


async def test_a_branch_bound_admin_lists_and_deletes_branches_of_its_lineage_only(
    gateway: Live,
) -> None:
    tree = await _tree(gateway)
    child = tree.child_admin["key"]
    path = f"/accounts/{tree.account}/branches"
    assert await _branch_ids(gateway, tree.account, child) == {"br-child", "br-grandchild"}
    status, unknown = await gateway.admin("DELETE", f"{path}/br-nowhere", token=child)
    assert status == 404
    for outside in ("br-other", "br-root"):
        # Outside its lineage looks exactly like a branch that does not exist.
        assert await gateway.admin("DELETE", f"{path}/{outside}", token=child) == (404, unknown)
    assert {"br-root", "br-other"} <= await _branch_ids(gateway, tree.account)
    status, made = await gateway.admin("POST", path, {"id": "br-leaf", "parent": "br-child"})
    assert status == 201, made
    assert (await gateway.admin("DELETE", f"{path}/br-leaf", token=child))[0] == 200
    assert "br-leaf" not in await _branch_ids(gateway, tree.account)


async def test_a_branch_bound_admin_reaches_only_the_keys_of_its_lineage(gateway: Live) -> None:
    tree = await _tree(gateway)
    child = tree.child_admin["key"]
    quota = {"requests_per_minute": 1}
    # The sibling's key, the ancestor's key, and the account-wide admin key.
    for target in (tree.keys["br-other"], tree.keys["br-root"], tree.account_admin):
        key = f"/keys/{target['id']}"
        for method, path, body in [
            ("GET", key, None),
            ("GET", f"{key}/quota", None),
            ("PUT", f"{key}/quota", quota),
            ("DELETE", f"{key}/quota", None),
            ("PUT", f"{key}/plan", {"plan": "free"}),
            ("GET", f"{key}/usage", None),
            ("POST", f"{key}/rotate", {"grace_seconds": 0}),
            ("DELETE", key, None),
        ]:
            status, answer = await gateway.admin(method, path, body, token=child)
            assert status == 404, (target["id"], method, path, answer)
            assert answer["error"]["message"] == "key not found"
        status, seen = await gateway.admin("GET", key)
        assert status == 200 and seen["quota"] == {} and seen["plan"] is None
        assert seen["revoked"] is False
    listed = (await gateway.admin("GET", "/keys", token=child))[1]["data"]
    assert {k["id"] for k in listed} == {
        tree.keys["br-child"]["id"],
        tree.keys["br-grandchild"]["id"],
        tree.child_admin["id"],
    }
    for branch in ("br-child", "br-grandchild"):
        path = f"/keys/{tree.keys[branch]['id']}/quota"
        status, view = await gateway.admin("PUT", path, quota, token=child)
        assert status == 200 and view["overrides"] == quota, view


async def test_a_branch_bound_admin_cannot_lock_out_the_account_admin(gateway: Live) -> None:
    tree = await _tree(gateway)
    child, main = tree.child_admin, tree.account_admin
    path = f"/keys/{main['id']}/rotate"
    status, _ = await gateway.admin("POST", path, {"grace_seconds": 0}, token=child["key"])
    assert status == 404
    assert (await gateway.admin("DELETE", f"/keys/{main['id']}", token=child["key"]))[0] == 404
    # The account's main admin still works, with the secret it had.
    assert (await gateway.admin("GET", "/keys", token=main["key"]))[0] == 200
    # A branch-bound admin may rotate itself.
    status, rotated = await gateway.admin(
        "POST", f"/keys/{child['id']}/rotate", {"grace_seconds": 0}, token=child["key"]
    )
    assert status == 200, rotated
    assert (await gateway.admin("GET", "/keys", token=rotated["key"]))[0] == 200
    assert (await gateway.admin("GET", "/keys", token=child["key"]))[0] == 401


async def test_account_wide_operations_stay_out_of_a_bound_admins_reach(gateway: Live) -> None:
    tree = await _tree(gateway)
    child = tree.child_admin["key"]
    account = f"/accounts/{tree.account}"
    status, answer = await gateway.admin("GET", f"/audit?account={tree.account}", token=child)
    assert status == 403 and answer["error"]["code"] == "branch_not_allowed", answer
    assert (await gateway.admin("GET", "/audit", token=child))[0] == 403
    for method, path, body in [
        ("PUT", f"{account}/quota", {"requests_per_minute": 1}),
        ("DELETE", f"{account}/quota", None),
        ("PUT", f"{account}/plan", {"plan": "free"}),
        ("POST", f"{account}/block", None),
        ("POST", f"{account}/unblock", None),
    ]:
        assert (await gateway.admin(method, path, body, token=child))[0] == 403, path


async def test_unbound_account_admins_and_the_operator_keep_their_reach(gateway: Live) -> None:
    tree = await _tree(gateway)
    path = f"/accounts/{tree.account}/branches"
    for credential in (tree.account_admin["key"], None):
        extra = {} if credential is None else {"token": credential}
        made = await gateway.admin(
            "POST", "/keys", {"account": tree.account, "scopes": ADMIN}, **extra
        )
        assert made[0] == 201 and made[1]["branch"] is None
        new_root = f"br-top-{'op' if credential is None else 'acct'}"
        assert (await gateway.admin("POST", path, {"id": new_root, "parent": None}, **extra))[
            0
        ] == 201
        assert (await gateway.admin("DELETE", f"{path}/{new_root}", **extra))[0] == 200
        sibling = f"/keys/{tree.keys['br-other']['id']}"
        quota = {"requests_per_minute": 3}
        assert (await gateway.admin("PUT", f"{sibling}/quota", quota, **extra))[0] == 200
        assert (await gateway.admin("POST", f"{sibling}/rotate", {"grace_seconds": 0}, **extra))[
            0
        ] == 200
        listed = (await gateway.admin("GET", f"/keys?account={tree.account}", **extra))[1]
        assert len(listed["data"]) >= 7
        assert (await gateway.admin("GET", f"/audit?account={tree.account}", **extra))[0] == 200
        assert await _branch_ids(gateway, tree.account, credential) == {
            "br-root",
            "br-child",
            "br-grandchild",
            "br-other",
        }
    assert (await gateway.admin("DELETE", f"{path}/br-other", token=tree.account_admin["key"]))[
        0
    ] == 200


async def test_a_jwt_bound_to_a_branch_is_held_to_its_lineage(jwt_gateway: Live) -> None:  # noqa: F811
    gateway = jwt_gateway
    account = "acct_jwt"  # the fixture's account, with br-main
    path = f"/accounts/{account}/branches"
    for branch, parent in (("br-child", "br-main"), ("br-other", "br-main")):
        assert (await gateway.admin("POST", path, {"id": branch, "parent": parent}))[0] == 201
    sibling = await _key(gateway, account, "br-other", INVOKE)
    main_admin = await _key(gateway, account, None, ADMIN)
    bearer = token(scope="ai_gateway:admin", branch="br-child")
    body = {"account": account, "scopes": ADMIN}
    status, answer = await gateway.admin("POST", "/keys", body, token=bearer)
    assert status == 403, answer
    _refused_as_wider(answer, "branch")
    status, answer = await gateway.admin("POST", path, {"id": "br-x", "parent": None}, bearer)
    assert status == 403, answer
    assert (await gateway.admin("DELETE", f"{path}/br-other", token=bearer))[0] == 404
    quota = {"requests_per_minute": 1}
    assert (await gateway.admin("PUT", f"/keys/{sibling['id']}/quota", quota, bearer))[0] == 404
    rotate = f"/keys/{main_admin['id']}/rotate"
    assert (await gateway.admin("POST", rotate, {"grace_seconds": 0}, bearer))[0] == 404
    # Within its lineage it administers as before.
    assert (await gateway.admin("POST", path, {"id": "br-z", "parent": "br-child"}, bearer))[
        0
    ] == 201
    status, made = await gateway.admin(
        "POST", "/keys", {"account": account, "branch": "br-z"}, token=bearer
    )
    assert status == 201 and made["branch"] == "br-z"
    # An unbound JWT admin of the account keeps the whole account.
    wide = token(scope="ai_gateway:admin", branch=None)
    assert (await gateway.admin("DELETE", f"{path}/br-other", token=wide))[0] == 200
