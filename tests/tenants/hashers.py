"""A password hasher that counts how many attempts reached it, and takes as long as a
real hash does, so concurrent attempts overlap as they would in production."""

import threading
import time

from django.contrib.auth.hashers import MD5PasswordHasher


class CountingHasher(MD5PasswordHasher):
    # The same algorithm name as MD5PasswordHasher: factories' hashes verify with it.
    cost_s = 0.05
    _lock = threading.Lock()
    verified = 0

    def verify(self, password, encoded):
        with CountingHasher._lock:
            CountingHasher.verified += 1
        time.sleep(self.cost_s)
        return super().verify(password, encoded)
