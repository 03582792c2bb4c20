"""Rendering a resource to a DummyRequest, whether it answers at once or with NOT_DONE_YET."""

from __future__ import annotations

from twisted.web.resource import IResource
from twisted.web.server import NOT_DONE_YET
from twisted.web.test.requesthelper import DummyRequest


def rendered(resource: IResource, req: DummyRequest) -> bytes:
    """The body ``resource`` answers ``req`` with; one that answers later (the install
    resources wait on the host states) must have finished by the time render returns."""
    body = resource.render(req)
    if body == NOT_DONE_YET:
        assert req.finished, "the request has no answer yet"
        return b"".join(req.written)
    assert isinstance(body, bytes)
    return body
