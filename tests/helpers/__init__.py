"""Code the tests share that is not itself a test: helpers imported by test modules
(``from helpers.scripts_runner import run_script``; pytest puts ``tests/`` on ``sys.path``)
and programs the tests start or a developer runs by hand (``dist_worker.py`` under
horovodrun, ``soak_resume.py``)."""
