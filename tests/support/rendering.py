"""Rendering a resource to a DummyRequest, whether it answers at once or with NOT_DONE_YET."""

from __future__ import annotations

from twisted.web.resource import IResource
from twisted.web.test.requesthelper import DummyRequest


def rendered(resource: IResource, req: DummyRequest) -> bytes:
    """The body ``resource`` answers ``req`` with; one that answers later (the install
    resources wait on the host states) must have finished by the time render returns."""
    body = resource.render(req)
    if not isinstance(body, bytes):  # NOT_DONE_YET
        assert req.finished, "the request has no answer yet"
        return b"".join(req.written)
    return body
