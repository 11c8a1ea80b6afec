"""Helpers of the 季度督查 / 工作要点 / 年度考核 tests (no tests here): the REST calls a round,
its findings and tasks are made and moved with, a real PNG, and the demo accounts' nodes."""
import struct
import zlib

from sqlalchemy import text


def png() -> bytes:
    """A real 1×1 PNG."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))


def org_of(ctx, username) -> int:
    return ctx.execute(text("SELECT org_id FROM ab_user WHERE username = :u"),
                       {"u": username}).scalar()


def item_ids(ctx) -> list[int]:
    return list(ctx.execute(text(
        "SELECT id FROM inspection_item WHERE deleted_on IS NULL ORDER BY seq, id")).scalars())


def task_of(ctx, finding) -> int:
    """The rectification task a failing finding opened (exactly one)."""
    ids = list(ctx.execute(text("SELECT id FROM rectification WHERE finding_id = :f "
                                "AND deleted_on IS NULL"), {"f": finding}).scalars())
    assert len(ids) == 1, f"finding {finding} should have opened one rectification task: {ids}"
    return ids[0]


def post(api, username, resource, body, status=201) -> int:
    client, headers = api(username)
    response = client.post(f"/api/v1/{resource}/", json=body, headers=headers)
    assert response.status_code == status, response.get_data(as_text=True)
    return response.json.get("id")


def move_task(api, username, resource, pk, name, body=None):
    """A move of a supervised task or a round, as `username` (or a (client, headers) pair)."""
    client, headers = api(username) if isinstance(username, str) else username
    return client.post(f"/api/v1/{resource}/{pk}/transition/{name}", json=body or {},
                       headers=headers)


def show(api, username, resource, pk):
    client, headers = api(username)
    return client.get(f"/api/v1/{resource}/{pk}", headers=headers)
