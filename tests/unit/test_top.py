"""``ps`` arguments for ``top``'s ``ps_args`` on both trees."""

from podapi.engine.top import ps_argv


def test_docker_passes_ps_options_with_ef_by_default() -> None:
    assert ps_argv("", libpod=False) == ["ps", "-ef"]
    assert ps_argv("aux", libpod=False) == ["ps", "aux"]


def test_libpod_descriptors_become_columns_with_podmans_titles() -> None:
    assert ps_argv("pid,args", libpod=True) == ["ps", "-e", "-opid=PID", "-oargs=COMMAND"]
    assert ps_argv("pid args", libpod=True) == ["ps", "-e", "-opid=PID", "-oargs=COMMAND"]
    default = ps_argv("", libpod=True)
    assert default[:2] == ["ps", "-e"] and "-ouser=USER" in default


def test_libpod_options_that_are_not_descriptors_go_to_ps() -> None:
    assert ps_argv("-ef", libpod=True) == ["ps", "-ef"]
