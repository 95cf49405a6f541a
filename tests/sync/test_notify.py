"""Failure and reconnect emails survive a failing mail server: marked sent only once
sent, retried with backoff, and still one message per incident."""

import smtplib
import threading
import time

import pytest
from django.core.mail.backends.locmem import EmailBackend

from connector.connections.models import LaunchDarklyConnection
from connector.connections.services import connection_mark_needs_reauth
from connector.sync import services
from connector.sync.models import ItemStatus, SyncItem, SyncRun
from tenants.scope import tenant_scope
from tests.metrics.conftest import connect
from tests.sync.factories import make_run

FLAKY = "tests.sync.test_notify.FlakySMTPBackend"


class FlakySMTPBackend(EmailBackend):
    """Django's locmem backend, failing the way an SMTP server that is away does for
    the first `failures` sends. `seen` calls back at every attempt."""

    failures = 0
    delay_s = 0.0
    attempts = 0
    seen = None

    def send_messages(self, messages):
        cls = type(self)
        cls.attempts += 1
        if cls.seen:
            cls.seen()
        time.sleep(cls.delay_s)
        if cls.failures > 0:
            cls.failures -= 1
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        return super().send_messages(messages)


@pytest.fixture
def flaky_mail(settings):
    settings.EMAIL_BACKEND = FLAKY
    # Tasks run inline, and so do their retries, without waiting out the countdown;
    # propagating would hand the first Retry to the caller instead of retrying.
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.CELERY_TASK_EAGER_PROPAGATES = False
    FlakySMTPBackend.failures, FlakySMTPBackend.delay_s = 0, 0.0
    FlakySMTPBackend.attempts, FlakySMTPBackend.seen = 0, None
    yield FlakySMTPBackend
    FlakySMTPBackend.seen = None


def notified_at(run):
    return SyncRun.objects.unscoped().get(pk=run.pk).failure_notified_at


def finish_with_failures(workspace, run):
    with tenant_scope(workspace):
        for item in SyncItem.objects.filter(run=run):
            claim = services.Claim(item=item, token=item.claim_token)
            services._settle(claim, ItemStatus.FAILED, message="boom", http_status=400)


@pytest.mark.django_db
def test_run_failures__smtp_fails_once__sent_on_retry_and_marked_only_then(
    owner, workspace, mailoutbox, flaky_mail, django_capture_on_commit_callbacks
):
    run = make_run(workspace, items=3, status=ItemStatus.IN_FLIGHT)
    flaky_mail.failures = 1
    marked_at_attempt = []
    flaky_mail.seen = lambda: marked_at_attempt.append(notified_at(run))

    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        finish_with_failures(workspace, run)

    assert flaky_mail.attempts == 2
    assert marked_at_attempt == [None, None]  # not marked before a send succeeded
    assert len(mailoutbox) == 1 and "3 failed" in mailoutbox[0].body
    assert notified_at(run) is not None
    assert time.monotonic() - started < 5  # eager retries do not wait out their backoff
    with tenant_scope(workspace):
        from connector.sync.notify import notify_run_failures

        assert notify_run_failures(run_id=run.pk) is False  # sent: never again


@pytest.mark.django_db
def test_run_failures__smtp_down_through_every_retry__not_marked_sent(
    owner, workspace, mailoutbox, flaky_mail, django_capture_on_commit_callbacks
):
    run = make_run(workspace, items=1, status=ItemStatus.IN_FLIGHT)
    flaky_mail.failures = 1000

    with django_capture_on_commit_callbacks(execute=True):
        finish_with_failures(workspace, run)

    from connector.sync.tasks import send_run_failures

    assert flaky_mail.attempts == send_run_failures.max_retries + 1
    assert mailoutbox == [] and notified_at(run) is None


@pytest.mark.django_db(transaction=True)
def test_run_failures__two_finishers_at_once__one_message(owner, workspace, mailoutbox, flaky_mail):
    run = make_run(workspace, items=1, status=ItemStatus.FAILED)
    SyncRun.objects.unscoped().filter(pk=run.pk).update(finished_at=run.started_at)
    flaky_mail.delay_s = 0.3  # a slow server: both finishers are inside at once
    from connector.sync.tasks import send_run_failures

    start = threading.Barrier(2)
    errors = []

    def finisher():
        try:
            start.wait()
            send_run_failures(workspace.pk, run.pk)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=finisher) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(mailoutbox) == 1 and flaky_mail.attempts == 1


@pytest.mark.django_db
def test_needs_reauth__smtp_fails_twice__sent_on_retry_once(
    owner, workspace, mailoutbox, flaky_mail, django_capture_on_commit_callbacks
):
    connection = connect(workspace)
    flaky_mail.failures = 2

    with tenant_scope(workspace), django_capture_on_commit_callbacks(execute=True) as queued:
        for _ in range(50):  # every failing call reports it; the transition happens once
            connection_mark_needs_reauth(connection=connection, reason="401 from LaunchDarkly")

    assert flaky_mail.attempts == 3
    assert len(mailoutbox) == 1 and "401 from LaunchDarkly" in mailoutbox[0].body
    # A second delivery of the same task (at-least-once) sends nothing more.
    queued[-1]()
    assert len(mailoutbox) == 1


@pytest.mark.django_db
def test_needs_reauth__reconnected_before_the_send__no_stale_email(
    owner, workspace, mailoutbox, flaky_mail, django_capture_on_commit_callbacks
):
    connection = connect(workspace)
    with tenant_scope(workspace), django_capture_on_commit_callbacks(execute=False) as queued:
        connection_mark_needs_reauth(connection=connection, reason="401 from LaunchDarkly")
    LaunchDarklyConnection.objects.unscoped().filter(pk=connection.pk).update(status="active")
    for callback in queued:
        callback()
    assert mailoutbox == []


@pytest.mark.django_db
def test_needs_reauth_task__connection_gone__nothing_sent(owner, workspace, mailoutbox, flaky_mail):
    from connector.sync.tasks import send_needs_reauth

    send_needs_reauth(workspace.pk, 2_147_483_000, "no-such-incident")
    assert mailoutbox == []


@pytest.mark.django_db
def test_run_failures__workspace_name_with_newlines__subject_on_one_line(
    owner, workspace, mailoutbox, settings, django_capture_on_commit_callbacks
):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    workspace.name = "Acme\r\nBcc: everyone@example.com"
    workspace.save()
    run = make_run(workspace, items=1, status=ItemStatus.IN_FLIGHT)

    with django_capture_on_commit_callbacks(execute=True):
        finish_with_failures(workspace, run)

    assert len(mailoutbox) == 1
    subject = mailoutbox[0].subject
    assert subject.startswith("[Acme Bcc: everyone@example.com] 1 metric(s)")
    assert "\n" not in subject and "\r" not in subject
    assert mailoutbox[0].bcc == []
