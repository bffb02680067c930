"""server/request.form_pairs reads an urlencoded body itself (no request.post()): the same pairs as
aiohttp's request.post() for every body, the same refusals."""
from __future__ import annotations

import asyncio

import pytest
from aiohttp.base_protocol import BaseProtocol
from aiohttp.streams import StreamReader
from aiohttp.test_utils import make_mocked_request

from tokensrv.errors import InvalidRequest
from tokensrv.server.request import FORM, form_pairs


def request_with(body: bytes, content_type: str = FORM, method: str = "POST"):
    """A request whose body arrived whole, read by aiohttp's own StreamReader."""
    reader = StreamReader(BaseProtocol(asyncio.get_running_loop()), 2**16, loop=asyncio.get_running_loop())
    reader.feed_data(body)
    reader.feed_eof()
    return make_mocked_request(method, "/oauth2/token", headers={"Content-Type": content_type,
                                                                 "Content-Length": str(len(body))},
                               payload=reader, client_max_size=2**16)


@pytest.mark.parametrize("body", [
    b"", b"grant_type=client_credentials&scope=read", b"scope=a+b%20c&scope=d", b"a=&b&=c&&",
    b"x=%zz%41;y=1", b"name=%C3%A9t%C3%A9", b"a=1\r\n \t", b"+=+&%2B=%2B", b"k=v=w",
])
async def test_the_same_pairs_as_aiohttp_post(body):
    expected = list((await request_with(body).post()).items())
    assert await form_pairs(request_with(body)) == expected


async def test_a_charset_is_honoured_as_by_post():
    body = "name=été".encode("latin-1")
    request = request_with(body, FORM + "; charset=latin-1")
    assert await form_pairs(request) == list((await request_with(body, FORM + "; charset=latin-1").post()).items())
    assert await form_pairs(request_with(body, FORM + "; charset=latin-1")) == [("name", "été")]


@pytest.mark.parametrize("body, content_type", [(b"a=%ff\xff", FORM), (b"a=1", FORM + "; charset=no-such")])
async def test_an_undecodable_body_is_invalid_request(body, content_type):
    with pytest.raises(InvalidRequest, match="undecodable body"):
        await form_pairs(request_with(body, content_type))


async def test_a_method_without_a_body_has_no_parameters_as_with_post():
    assert await form_pairs(request_with(b"a=1", method="GET")) == []
    assert list((await request_with(b"a=1", method="GET").post()).items()) == []
