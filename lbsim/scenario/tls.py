"""The amphora's TLS cost model (lbsim): what TERMINATED_HTTPS listeners and
``tls_enabled`` pools charge the amphora's vCPUs.

With a ``flavor`` every new connection already costs ``1 / requests_per_second_per_vcpu``
of one vCPU. TLS adds, per connection:

* on a TERMINATED_HTTPS listener, the server side of the handshake: ``full_handshake``
  for a new session, ``resumed_handshake`` for a resumed one (the traffic source's
  ``tls_session_reuse`` is the share of resumed connections), plus ``per_byte`` for every
  byte of request and response (record encryption and decryption);
* when the listener's default pool has ``tls_enabled`` (re-encryption to the members),
  the client side of a handshake with the member, ``backend_handshake``, plus ``per_byte``
  again for the bytes on that leg.

Defaults, measured with ``openssl speed -seconds 1 rsa2048 ecdhx25519 ecdsap256`` and
``openssl speed -seconds 1 -evp aes-128-gcm`` (OpenSSL 3.0, one x86-64 core with AES-NI):
RSA-2048 sign 279 µs, X25519 33 µs per operation, ECDSA P-256 verify 63 µs, RSA-2048
verify 18 µs, AES-128-GCM 4.25 GB/s with 16 KiB records.

* ``full_handshake`` 0.35 ms: one RSA-2048 signature (the server certificate, the usual
  key) plus two X25519 operations (ephemeral key and shared secret), rounded up;
* ``resumed_handshake`` 0.07 ms: a session ticket skips the signature; TLS 1.3 resumption
  with (EC)DHE still does the two X25519 operations;
* ``backend_handshake`` 0.1 ms: HAProxy as a client verifies the member's RSA signature
  and certificate chain (two RSA verifies) and does two X25519 operations; HAProxy
  resumes server sessions, and this counts one per connection (an upper bound);
* ``per_byte`` 0.25 ns: 1 / 4.25 GB/s, rounded.

These are CPU figures of the cryptography only; HAProxy's own parsing is the flavor's
``requests_per_second_per_vcpu``. Set them to other measurements on the flavor.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from lbsim.scenario.base import _Strict

Seconds = Annotated[float, Field(ge=0, le=1)]


class TlsCost(_Strict):
    """CPU seconds one vCPU spends on TLS work (defaults: measured, see the module)."""

    full_handshake: Seconds = 0.00035
    resumed_handshake: Seconds = 0.00007
    backend_handshake: Seconds = 0.0001
    per_byte: Annotated[float, Field(ge=0, le=1e-3)] = 0.25e-9


#: a traffic source's share of resumed TLS sessions
SessionReuse = Annotated[float, Field(ge=0, le=1)]
