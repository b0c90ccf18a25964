"""``recsys doctor``'s check of the recommendation service at RECSYS_SERVE_URL (a real server)."""

from recsys_core.tracking.doctor import check_service
from recsys_service.app import create_app
from recsys_service.settings import ServiceSettings


def test_the_doctor_reports_a_fresh_service_as_a_state_then_ready(
    store, model_name, data, fit, publish, live_server
):
    app = create_app(ServiceSettings(registered_model=model_name), poll=False)
    with live_server(app) as server:
        app.state.live.refresh()
        env = {"RECSYS_SERVE_URL": server.url + "/"}
        check = check_service(env)
        # nothing promoted yet is where every install starts: a state with the next step
        assert check.ok and check.state and "no model promoted yet" in check.detail
        assert f"registered model {model_name!r} has no version" in check.detail
        assert "recsys train" in check.fix
        publish(fit("popularity", data), store, model_name)
        app.state.live.refresh()
        check = check_service(env)
        assert check.ok and check.detail == f"{server.url} ready"


def test_the_doctor_names_an_unreachable_service_and_skips_an_unset_one(free_port):
    assert check_service({}) is None
    check = check_service({"RECSYS_SERVE_URL": f"http://127.0.0.1:{free_port()}"})
    assert not check.ok and "unreachable" in check.detail and "RECSYS_SERVE_URL" in check.fix


def test_a_champion_whose_artifacts_are_gone_still_fails(
    store, model_name, data, fit, publish, live_server, tmp_path
):
    import shutil
    from urllib.parse import urlparse
    from urllib.request import url2pathname

    import mlflow

    ref = publish(fit("popularity", data), tmp_path, model_name)
    uri = mlflow.MlflowClient().get_run(ref.run_id).info.artifact_uri
    shutil.rmtree(url2pathname(urlparse(uri).path))  # what an artifact store reset does
    app = create_app(ServiceSettings(registered_model=model_name), poll=False)
    with live_server(app) as server:
        app.state.live.refresh()
        check = check_service({"RECSYS_SERVE_URL": server.url})
        assert not check.ok and not check.state
        assert "cannot be loaded" in check.detail and "promote a model" in check.fix
