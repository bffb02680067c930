async def test_jwks_served(client):
    resp = await client.get("/.well-known/jwks.json")
    assert resp.status == 200
    body = await resp.json()
    assert len(body["keys"]) == 2
