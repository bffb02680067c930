import json
import urllib.request


def test_live_server_issues_client_credentials_token(live_server):
    created = json.loads(live_server.cli("client", "add", "--id", "svc", "--grant-type", "client_credentials").stdout)
    req = urllib.request.Request(live_server.url + "/oauth2/token", data=b"grant_type=client_credentials",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    import base64
    req.add_header("Authorization", "Basic " + base64.b64encode(f"svc:{created['client_secret']}".encode()).decode())
    with urllib.request.urlopen(req) as resp:
        assert resp.status == 200
        assert json.load(resp)["token_type"] == "Bearer"
