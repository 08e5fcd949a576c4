"""The flows hand the run report a link to their flow run's page, as plain data."""

from __future__ import annotations

RUN_ID = "0d3c5a1e-1b1b-4c1c-9a8e-1f2e3d4c5b6a"


def test_outside_a_flow_run_there_is_no_prefect_link(monkeypatch):
    from flows.regional import prefect_links

    monkeypatch.delenv("PREFECT__FLOW_RUN_ID", raising=False)
    assert prefect_links() == {}


def test_a_flow_run_links_its_page_in_the_prefect_ui(monkeypatch):
    """Prefect's own runtime resolves the id (the variable its workers set for a flow run)."""
    from prefect.settings import PREFECT_UI_URL, temporary_settings

    from flows.regional import prefect_links

    monkeypatch.setenv("PREFECT__FLOW_RUN_ID", RUN_ID)
    with temporary_settings({PREFECT_UI_URL: "http://prefect.example:4200"}):
        assert prefect_links() == {
            "prefect_flow_run": f"http://prefect.example:4200/flow-runs/flow-run/{RUN_ID}"
        }
    with temporary_settings(restore_defaults={PREFECT_UI_URL}, set_defaults={PREFECT_UI_URL: ""}):
        assert prefect_links() == {}  # no UI to link to: no dead link
