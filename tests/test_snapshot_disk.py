"""A disk snapshot is complete on disk (flushed, fsync'd, its size checked) before `keep_state`'s block or
`lr_find` changes anything; one that cannot be written is an error that says where and what to do."""
import errno, io, os, tempfile
import pytest, torch
from fastai.callback.core import Callback
from fastai_anneal.all import *
from lr_find_state import make_learner, full_state, assert_same

class Count(Callback):
    "Counts training batches"
    n = 0
    def before_batch(self): self.n += 1

class FullRaw(io.FileIO):
    "A file on a disk with `room` bytes free: a write past them fails with ENOSPC"
    room = float('inf')
    written = 0
    def write(self, b):
        n = memoryview(b).nbytes
        if n > self.room: raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= n
        FullRaw.written += n
        return super().write(b)

def use_disk(monkeypatch, room):
    "Make `tempfile.TemporaryFile` a buffered file on a disk with `room` bytes free; return the files made"
    made = []
    def make(*a, **k):
        fd,path = tempfile.mkstemp()
        os.unlink(path)
        raw = FullRaw(fd, 'r+b')
        raw.room = room
        made.append(raw)
        return io.BufferedRandom(raw)  # small writes wait in its buffer until a flush
    monkeypatch.setattr(tempfile, 'TemporaryFile', make)
    return made

def snapshot_size(monkeypatch):
    "How many bytes a disk snapshot of `make_learner()` after one epoch writes"
    learn = make_learner()
    learn.fit(1)
    FullRaw.written = 0
    use_disk(monkeypatch, float('inf'))
    with keep_state(learn): pass
    return FullRaw.written

@pytest.mark.parametrize('short', [1, 10, 1000])
def test_lr_find_on_a_nearly_full_disk_refuses_before_training(monkeypatch, short):
    "The last bytes of the snapshot don't fit: an error naming TMPDIR and snapshot='cpu', nothing trained or lost"
    room = snapshot_size(monkeypatch) - short
    learn,count = make_learner(),Count()
    learn.fit(1)
    learn.add_cb(count)
    before = full_state(learn)
    n0 = count.n
    made = use_disk(monkeypatch, room)
    with pytest.raises(OSError, match="snapshot='cpu'") as e: learn.lr_find(num_it=10, show_plot=False)
    assert e.value.errno == errno.ENOSPC and 'TMPDIR' in str(e.value)
    assert tempfile.gettempdir() in str(e.value)
    assert count.n == n0  # not one training batch ran
    assert_same(learn, before)
    assert all(f.closed for f in made)
    monkeypatch.undo()
    learn.lr_find(num_it=10, show_plot=False)  # usable, and restored
    assert_same(learn, before)

def test_keep_state_on_a_full_disk_never_enters_the_block(monkeypatch):
    learn = make_learner()
    learn.fit(1)
    before = full_state(learn)
    use_disk(monkeypatch, 0)
    ran = []
    with pytest.raises(OSError, match="TMPDIR"):
        with keep_state(learn): ran.append(1)
    assert ran == []
    assert_same(learn, before)
    with keep_state(learn, 'cpu'): learn.fit(1)  # the suggested way out works
    assert_same(learn, before)

def test_failing_fsync_is_an_error_before_the_block(monkeypatch):
    "A disk that takes the bytes but fails them at fsync (ENOSPC on a network file system)"
    learn = make_learner()
    learn.fit(1)
    before = full_state(learn)
    def fsync(fd): raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(os, 'fsync', fsync)
    with pytest.raises(OSError, match='snapshot'):
        with keep_state(learn): learn.fit(1, lr=10.)
    assert_same(learn, before)

def test_fsync_unsupported_is_not_an_error(monkeypatch):
    "A file system without fsync (EINVAL): the flushed copy is used"
    learn = make_learner()
    learn.fit(1)
    before = full_state(learn)
    def fsync(fd): raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
    monkeypatch.setattr(os, 'fsync', fsync)
    with keep_state(learn): learn.fit(1, lr=10.)
    assert_same(learn, before)

def test_the_lr_finder_alone_on_a_full_disk_trains_nothing(monkeypatch):
    learn,count = make_learner(),Count()
    learn.fit(1)
    learn.add_cb(count)
    w = [p.detach().clone() for p in learn.model.parameters()]
    n0 = count.n
    use_disk(monkeypatch, 0)
    with pytest.raises(OSError, match="snapshot='cpu'"): learn.fit(1, cbs=LRFinder(num_it=10))
    assert count.n == n0
    assert all(torch.equal(a, b) for a,b in zip(w, learn.model.parameters()))
    assert not any(isinstance(cb, LRFinder) for cb in learn.cbs)
