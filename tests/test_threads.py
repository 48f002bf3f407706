"""MXNet's OpenMP threads: chosen from the physical cores, the user's setting wins."""
import os
import subprocess
import sys

import pytest

from gluon_tricks import threads

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _topology(tmp_path, cores_of_cpu):
    """A fake sysfs: logical CPU i on physical core cores_of_cpu[i] (package 0)."""
    for cpu, core in enumerate(cores_of_cpu):
        d = tmp_path / ('cpu%d' % cpu) / 'topology'
        d.mkdir(parents=True)
        (d / 'core_id').write_text('%d\n' % core)
        (d / 'physical_package_id').write_text('0\n')
    return str(tmp_path)


def test_physical_cores_count_hyperthreads_once(tmp_path):
    sysfs = _topology(tmp_path, [0, 1, 0, 1])              # 2 cores x 2 hyper-threads
    assert threads.physical_cores([0, 1, 2, 3], sysfs) == 2
    assert threads.physical_cores([0, 2], sysfs) == 1      # affinity: one core's two threads
    assert threads.physical_cores([0, 1], sysfs) == 2
    assert threads.physical_cores([0, 7], sysfs) == 2      # topology unreadable: CPU count


def test_choice_user_override_and_ranks():
    assert threads.choose_threads({}, cores=2)[0] == '2'
    n, why = threads.choose_threads({'OMP_NUM_THREADS': '3'}, cores=2)
    assert n == '3' and 'set by you' in why
    n, why = threads.choose_threads({'HOROVOD_LOCAL_SIZE': '2'}, cores=8)
    assert n == '4' and 'shared by 2 ranks' in why
    assert threads.choose_threads({'OMPI_COMM_WORLD_LOCAL_SIZE': '4'}, cores=2)[0] == '1'


def test_wait_policy_caps_spinning_unless_the_user_chose():
    wait, why = threads.choose_wait_policy({})
    assert wait == {'GOMP_SPINCOUNT': str(threads.SPIN_COUNT)} and 'spin' in why
    assert threads.SPIN_COUNT < 300000          # below libgomp's own default spin
    for user in ({'OMP_WAIT_POLICY': 'ACTIVE'}, {'GOMP_SPINCOUNT': 'infinite'}):
        wait, why = threads.choose_wait_policy(user)
        assert wait == {} and 'set by you' in why and list(user.values())[0] in why


def _run(code, **env):
    environ = {k: v for k, v in os.environ.items()
               if k not in ('OMP_NUM_THREADS', 'GOMP_SPINCOUNT', 'OMP_WAIT_POLICY')}
    environ.update(env)
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         cwd=REPO, env=environ, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()


@pytest.mark.subprocess
def test_configure_before_mxnet_sets_the_environment():
    code = ('from gluon_tricks.threads import configure_threads, physical_cores; '
            'print(configure_threads()); import os, mxnet; '
            'print(os.environ["OMP_NUM_THREADS"], physical_cores(), '
            'os.environ.get("GOMP_SPINCOUNT"))')
    why, numbers = _run(code)
    n, cores, spin = numbers.split()
    assert n == cores and why.startswith('OpenMP: %s threads' % n)
    assert spin == str(threads.SPIN_COUNT)
    why, numbers = _run(code, OMP_WAIT_POLICY='ACTIVE')
    assert numbers.split()[2] == 'None' and 'OMP_WAIT_POLICY=ACTIVE set by you' in why
    why, numbers = _run(code, OMP_NUM_THREADS='1')
    assert numbers.split()[0] == '1' and 'set by you' in why
    late = _run('import mxnet; from gluon_tricks.threads import configure_threads; '
                'print(configure_threads())')
    assert 'after import mxnet' in late[0]


@pytest.mark.subprocess
def test_training_script_logs_its_choice(tmp_path, rec_dir):
    """A short real run (one epoch of the test digits at 32 px) logs the thread choice."""
    script = os.path.join(REPO, 'scripts', 'classification', 'train_imagenet.py')
    environ = {k: v for k, v in os.environ.items() if k != 'OMP_NUM_THREADS'}
    out = subprocess.run([sys.executable, script, '--use-rec', '--data-dir', rec_dir,
                          '--input-size', '32', '--batch-size', '32', '--num-epochs', '1',
                          '-j', '0', '--save-dir', str(tmp_path / 'run'),
                          '--model', 'resnet18_v1b'],
                         capture_output=True, text=True, env=environ, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert 'OpenMP: %d threads' % threads.physical_cores() in out.stdout + out.stderr


def test_data_workers_default_to_the_cpus_of_a_rank():
    assert threads.data_workers(3) == (3, '-j 3 set by you')
    assert threads.data_workers(0)[0] == 0
    assert threads.data_workers(environ={}, cpus=2)[0] == 2        # no core to spare
    assert threads.data_workers(environ={}, cpus=1)[0] == 1
    n, why = threads.data_workers(environ={}, cpus=16)
    assert n == 15 and 'one left for the training process' in why
    n, why = threads.data_workers(environ={'HOROVOD_LOCAL_SIZE': '8'}, cpus=64)
    assert n == 7 and 'shared by 8 ranks' in why
    assert threads.data_workers(environ={'OMPI_COMM_WORLD_LOCAL_SIZE': '4'}, cpus=4)[0] == 1


def test_a_prefetch_larger_than_shared_memory_is_refused_naming_the_flags(tmp_path):
    from gluon_tricks.data.workers import SharedMemoryError, check_shared_memory
    free = os.statvfs(str(tmp_path)).f_bavail * os.statvfs(str(tmp_path)).f_frsize
    check_shared_memory(free // 100, 4, 'train.rec', path=str(tmp_path))     # 10 batches fit
    with pytest.raises(SharedMemoryError) as e:
        check_shared_memory(free // 5, 4, 'train.rec', path=str(tmp_path))
    msg = str(e.value)
    assert 'train.rec' in msg and '-j' in msg and '--batch-size' in msg and '--shm-size' in msg
    check_shared_memory(free * 10, 0, 'train.rec', path=str(tmp_path))      # -j 0: no workers
    check_shared_memory(free * 10, 4, 'train.rec', path=str(tmp_path / 'missing'))
