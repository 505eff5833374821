"""/healthz, /readyz and /metrics of a real shipper process, on a port the system
chose (``health.listen: 127.0.0.1:0``) and found through the ``health.listening`` log."""

from __future__ import annotations

from tests.support.probe import get
from tests.support.process import ShipperProcess, wait_until


class TestHealthEndpoints:
    def test_port_zero_is_bound_logged_and_every_endpoint_answers(self, tmp_path, make_config):
        """The logged address is the bound one; /healthz and /readyz answer 200 once
        started (to HEAD too, as some load balancers check), /metrics in the Prometheus
        text format; another method 405, anything else 404."""
        logs = tmp_path / "logs" / "app"
        logs.mkdir(parents=True)
        config = make_config(
            [{"category": "app", "path": str(logs / "app.log")}], health={"listen": "127.0.0.1:0"}
        )
        with ShipperProcess(config) as shipper:
            (listening,) = shipper.find("health.listening")
            assert listening["host"] == "127.0.0.1"
            assert listening["port"] > 0
            url = shipper.health_url()
            assert get(f"{url}/healthz") == (200, "ok\n")
            assert wait_until(lambda: get(f"{url}/readyz")[0] == 200)
            status, text = get(f"{url}/metrics")
            assert status == 200
            assert "# TYPE shipper_records_shipped_total counter" in text
            assert get(f"{url}/healthz", method="HEAD") == (200, "")
            assert get(f"{url}/healthz", method="POST")[0] == 405
            assert get(f"{url}/nothing-here")[0] == 404
            assert shipper.stop() == 0

    def test_readyz_names_a_missing_source_folder_until_it_is_watched(self, tmp_path, make_config):
        """Not ready while a source's folder does not exist (it cannot be watched);
        ready once the folder appears and the rescan watches it.  /healthz stays 200:
        the process is alive either way."""
        folder = tmp_path / "logs" / "late"
        config = make_config(
            [{"category": "late", "path": str(folder / "late.log")}],
            health={"listen": "127.0.0.1:0"},
        )
        with ShipperProcess(config) as shipper:
            url = shipper.health_url()
            status, text = get(f"{url}/readyz")
            assert status == 503
            assert f"{folder}: folder does not exist" in text
            assert get(f"{url}/healthz")[0] == 200
            folder.mkdir(parents=True)
            wait_until(lambda: get(f"{url}/readyz")[0] == 200, timeout=15)
            assert shipper.stop() == 0
