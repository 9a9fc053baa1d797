# Stand-in for the "real cluster" block of docs/user_guide/dask.rst: the same client code, with
# the scheduler and a worker started here on the loopback address instead of on other machines.
# The client connects by the scheduler's tcp address, as it would to a remote one; the worker
# runs in this process (processes=False), so no second Python starts and imports torch.
from distributed import Client, LocalCluster

if __name__ == "__main__":
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp://",
                      host="127.0.0.1", dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1:"), address

        client = Client(address)
        with joblib.parallel_backend("dask"):
            search.fit(X, y, groups=groups)
        print(search.best_params_, search.best_score_)
        client.close()
