"""Python bindings to mia's C ABI, with ctypes only: no build step beyond the cdylib.

The library is found through the ``MIA_LIB`` environment variable (the path of
``libmia_ffi.so``, ``libmia_ffi.dylib`` or ``mia_ffi.dll``), or else as the newest build in
cargo's target folder (``$CARGO_TARGET_DIR`` or ``target/`` at the repository root). Build it
with ``cargo build -p mia-ffi``.

Everything goes in and out as Python objects (dicts and lists): the bindings turn them into the
JSON the C ABI takes and parse the JSON it returns. A failed call raises :class:`MiaError`
with the status name (``"MIA_INVALID_JSON"``, ``"MIA_CLOSED_HANDLE"``, ...) and mia's message.

Thread-safety follows the C ABI: every call is safe from any thread, calls on one agent are
serialised, and callbacks run on the thread whose call produced them, after the work, so they
may call back into the same agent.
"""

import ctypes
import json
import os
import sys
from pathlib import Path

__all__ = ["Agent", "Bandit", "MiaError", "scan_text", "version", "library_path"]

_EVENT_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p)


class MiaError(Exception):
    """A ``mia_*`` call returned something other than ``MIA_OK``."""

    def __init__(self, status, name, message):
        super().__init__(f"{name}: {message}")
        self.status = status
        self.name = name
        self.message = message


def _library_names():
    if sys.platform == "darwin":
        return ["libmia_ffi.dylib"]
    if sys.platform == "win32":
        return ["mia_ffi.dll"]
    return ["libmia_ffi.so"]


def library_path():
    """Where the cdylib is: ``$MIA_LIB``, or else the newest build in cargo's target folder
    (``target/{debug,release}`` or their ``deps``, where ``cargo test`` leaves it)."""
    explicit = os.environ.get("MIA_LIB")
    if explicit:
        return Path(explicit)
    root = Path(__file__).resolve().parents[2]
    target = Path(os.environ.get("CARGO_TARGET_DIR") or root / "target")
    found = [
        folder / name
        for profile in ("debug", "release")
        for folder in (target / profile, target / profile / "deps")
        for name in _library_names()
        if (folder / name).is_file()
    ]
    if not found:
        raise FileNotFoundError(
            f"libmia_ffi not found under {target}: run `cargo build -p mia-ffi` "
            "or set MIA_LIB to the library's path"
        )
    return max(found, key=lambda path: path.stat().st_mtime)


_lib = None


def _load():
    global _lib
    if _lib is not None:
        return _lib
    lib = ctypes.CDLL(str(library_path()))
    status = ctypes.c_int
    p, s = ctypes.c_void_p, ctypes.c_char_p
    out_p = ctypes.POINTER(ctypes.c_void_p)
    out_size = ctypes.POINTER(ctypes.c_size_t)
    signatures = {
        "mia_version": ([], s),
        "mia_last_error": ([], s),
        "mia_status_name": ([status], s),
        "mia_string_free": ([p], status),
        "mia_agent_new": ([s, out_p], status),
        "mia_agent_free": ([p], status),
        "mia_agent_set_event_callback": ([p, _EVENT_CALLBACK, p], status),
        "mia_agent_set_review_callback": ([p, _EVENT_CALLBACK, p], status),
        "mia_agent_run": ([p, s, out_p], status),
        "mia_contact_import": ([p, s, out_size], status),
        "mia_consent_record": ([p, s, out_size], status),
        "mia_inbound_record": ([p, s, out_p], status),
        "mia_campaign_create": ([p, s, out_p], status),
        "mia_campaign_launch": ([p, s, out_p], status),
        "mia_campaign_report": ([p, s, out_p], status),
        "mia_review_list": ([p, out_p], status),
        "mia_review_approve": ([p, s, s, out_p], status),
        "mia_review_edit": ([p, s, s, s, out_p], status),
        "mia_review_reject": ([p, s, s, s, out_p], status),
        "mia_scan_text": ([s, s, out_p], status),
        "mia_bandit_new": ([s, out_p], status),
        "mia_bandit_free": ([p], status),
        "mia_bandit_assign": ([p, s, s, s, out_p], status),
        "mia_bandit_reward": ([p, s, s, s, ctypes.c_double, ctypes.POINTER(ctypes.c_bool)], status),
        "mia_bandit_stats": ([p, s, out_p], status),
    }
    for name, (args, result) in signatures.items():
        function = getattr(lib, name)
        function.argtypes = args
        function.restype = result
    _lib = lib
    return lib


def _text(value):
    """``None`` stays NULL, ``bytes`` pass as they are (to test encodings), ``str`` is UTF-8."""
    if value is None or isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")


def _json(value):
    return None if value is None else json.dumps(value).encode("utf-8")


def _check(status):
    if status != 0:
        lib = _load()
        name = lib.mia_status_name(status).decode()
        message = lib.mia_last_error().decode("utf-8", "replace")
        raise MiaError(status, name, message)


def _call_string(function, *args):
    """Calls a function whose last argument is a ``char **`` result, parses and frees it."""
    out = ctypes.c_void_p()
    _check(function(*args, ctypes.byref(out)))
    try:
        return json.loads(ctypes.string_at(out.value).decode("utf-8"))
    finally:
        _load().mia_string_free(out)


def version():
    """The version of the loaded library."""
    return _load().mia_version().decode()


def scan_text(text, **options):
    """Scans ``text`` with the content guard and the personal-data scanner.

    Options as in ``mia_scan_text``: ``allow_domains``, ``blacklist``, ``locale``, ``redact``
    (``"mask"``, ``"hash"``, ``"tag"``), ``salt``, ``opt_out_notice``. Returns
    ``{"findings": [...], "verdict": ..., "rules": [...]}``.
    """
    lib = _load()
    return _call_string(lib.mia_scan_text, _text(text), _json(options or None))


class Agent:
    """An agent on embedded defaults: store, offline copywriter, simulated Telegram, guards.

    ``config`` is the dict of ``mia_agent_new`` (``store``, ``seed``, ``start``,
    ``allow_domains``, ``blacklist``, ``allocator``, ``notice_version``,
    ``stop_confirmation``, ``llm``, ``transport``). Use it as a context manager, or call
    :meth:`close`.
    """

    def __init__(self, config=None):
        self._lib = _load()
        handle = ctypes.c_void_p()
        _check(self._lib.mia_agent_new(_json(config), ctypes.byref(handle)))
        self._handle = handle
        self._closed = False
        self._callbacks = {}
        self._callback_errors = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if not self._closed:
            self.close()

    def __del__(self):
        if not getattr(self, "_closed", True):
            self._lib.mia_agent_free(self._handle)

    def close(self):
        """Frees the agent. Using it afterwards, or closing it again, raises
        ``MIA_CLOSED_HANDLE``, as in C."""
        self._closed = True
        _check(self._lib.mia_agent_free(self._handle))

    @property
    def _h(self):
        # After close the old id is still passed, and mia answers MIA_CLOSED_HANDLE.
        return self._handle

    def _after(self, result):
        if self._callback_errors:
            error = self._callback_errors.pop(0)
            self._callback_errors.clear()
            raise error
        return result

    def _set_callback(self, setter, kind, function):
        if function is None:
            _check(setter(self._h, _EVENT_CALLBACK(), None))
            self._callbacks.pop(kind, None)
            return

        def trampoline(_userdata, text):
            try:
                function(json.loads(text.decode("utf-8")))
            except BaseException as error:  # never unwind into C; re-raised after the call
                self._callback_errors.append(error)

        c_function = _EVENT_CALLBACK(trampoline)
        _check(setter(self._h, c_function, None))
        self._callbacks[kind] = c_function  # keep it alive as long as mia may call it

    def on_event(self, function):
        """Calls ``function(event: dict)`` for every recorded event (``None`` stops)."""
        self._set_callback(self._lib.mia_agent_set_event_callback, "event", function)

    def on_review(self, function):
        """Calls ``function(review: dict)`` once for each review item queued (``None`` stops)."""
        self._set_callback(self._lib.mia_agent_set_review_callback, "review", function)

    def import_contacts(self, contacts):
        """Adds or replaces contacts (a dict or a list of dicts). Returns how many."""
        count = ctypes.c_size_t()
        _check(self._lib.mia_contact_import(self._h, _json(contacts), ctypes.byref(count)))
        return self._after(count.value)

    def record_consent(self, records):
        """Appends consent records, each with its evidence. Returns how many."""
        count = ctypes.c_size_t()
        _check(self._lib.mia_consent_record(self._h, _json(records), ctypes.byref(count)))
        return self._after(count.value)

    def record_inbound(self, events):
        """Records opt-ins, STOPs, replies, clicks, conversions. Returns the run statistics."""
        return self._after(_call_string(self._lib.mia_inbound_record, self._h, _json(events)))

    def create_campaign(self, spec):
        """Writes and checks the copy. Returns the campaign (``state``: approved, in_review...)."""
        return self._after(_call_string(self._lib.mia_campaign_create, self._h, _json(spec)))

    def launch(self, campaign_id):
        """Queues an approved campaign for everyone with consent and starts it."""
        return self._after(
            _call_string(self._lib.mia_campaign_launch, self._h, _text(campaign_id))
        )

    def run(self, attribution_hours=None):
        """Sends in virtual time until idle, then collects reactions for a while."""
        options = None if attribution_hours is None else {"attribution_hours": attribution_hours}
        return self._after(_call_string(self._lib.mia_agent_run, self._h, _json(options)))

    def report(self, campaign_id):
        """The campaign's report: every audience member counted once."""
        return self._after(
            _call_string(self._lib.mia_campaign_report, self._h, _text(campaign_id))
        )

    def pending_reviews(self):
        """Review items waiting for a human, oldest first."""
        return self._after(_call_string(self._lib.mia_review_list, self._h))

    def approve_review(self, review_id, reviewer):
        """Approves one item as it is, in the reviewer's name. Returns the campaign."""
        return self._after(
            _call_string(
                self._lib.mia_review_approve, self._h, _text(review_id), _text(reviewer)
            )
        )

    def edit_review(self, review_id, reviewer, text):
        """Approves a variant with new text, which must pass the content guard."""
        return self._after(
            _call_string(
                self._lib.mia_review_edit, self._h, _text(review_id), _text(reviewer), _text(text)
            )
        )

    def reject_review(self, review_id, reviewer, note=""):
        """Rejects one item: it is never sent."""
        return self._after(
            _call_string(
                self._lib.mia_review_reject, self._h, _text(review_id), _text(reviewer), _text(note)
            )
        )


class Bandit:
    """A bandit: sticky variant assignments that learn from rewards (``mia_bandit_*``)."""

    def __init__(self, config=None):
        self._lib = _load()
        handle = ctypes.c_void_p()
        _check(self._lib.mia_bandit_new(_json(config), ctypes.byref(handle)))
        self._handle = handle
        self._closed = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if not self._closed:
            self.close()

    def __del__(self):
        if not getattr(self, "_closed", True):
            self._lib.mia_bandit_free(self._handle)

    def close(self):
        """Frees the bandit. Using it afterwards raises ``MIA_CLOSED_HANDLE``."""
        self._closed = True
        _check(self._lib.mia_bandit_free(self._handle))

    def assign(self, campaign, contact, variants):
        """Returns ``{"variant", "propensity"}`` for the contact (the same one every time)."""
        return _call_string(
            self._lib.mia_bandit_assign,
            self._handle,
            _text(campaign),
            _text(contact),
            _json(list(variants)),
        )

    def reward(self, campaign, contact, variant, value=1.0):
        """Records a reward; returns whether it counted (once per assignment)."""
        counted = ctypes.c_bool()
        _check(
            self._lib.mia_bandit_reward(
                self._handle,
                _text(campaign),
                _text(contact),
                _text(variant),
                float(value),
                ctypes.byref(counted),
            )
        )
        return counted.value

    def stats(self, campaign):
        """Pulls, rewards and mean per variant."""
        return _call_string(self._lib.mia_bandit_stats, self._handle, _text(campaign))
