"""``recsys doctor``'s check of the recommendation service at RECSYS_SERVE_URL (a real server)."""

from recsys_core.tracking.doctor import check_service
from recsys_service.app import create_app
from recsys_service.settings import ServiceSettings


def test_the_doctor_reports_a_service_not_ready_then_ready(store, model_name, data, fit, publish,
                                                          live_server):
    app = create_app(ServiceSettings(registered_model=model_name), poll=False)
    with live_server(app) as server:
        app.state.live.refresh()
        env = {"RECSYS_SERVE_URL": server.url + "/"}
        check = check_service(env)
        assert not check.ok and "not ready" in check.detail
        assert f"registered model {model_name!r} has no version" in check.detail
        assert "promote a model" in check.fix
        publish(fit("popularity", data), store, model_name)
        app.state.live.refresh()
        check = check_service(env)
        assert check.ok and check.detail == f"{server.url} ready"


def test_the_doctor_names_an_unreachable_service_and_skips_an_unset_one(free_port):
    assert check_service({}) is None
    check = check_service({"RECSYS_SERVE_URL": f"http://127.0.0.1:{free_port()}"})
    assert not check.ok and "unreachable" in check.detail and "RECSYS_SERVE_URL" in check.fix
