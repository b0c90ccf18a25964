"""RECSYS_SERVE_URL is where clients (recsys doctor, recsys forget) find the service, not a
setting of the service, although it shares the service's RECSYS_SERVE_ prefix."""

from recsys_service.settings import ServiceSettings


def test_the_clients_service_address_is_no_service_setting(monkeypatch, tmp_path):
    # a field `url` would read the clients' variable as the service's own setting
    assert "url" not in ServiceSettings.model_fields
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RECSYS_SERVE_URL", "http://127.0.0.1:8000")
    (tmp_path / ".env").write_text("RECSYS_SERVE_URL=http://127.0.0.1:8000\n")
    ServiceSettings()  # ignored, not refused
