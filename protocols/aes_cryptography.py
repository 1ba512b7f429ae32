# cryptolib's AES (what MicroPython gives the devices) on CPython, through the
# cryptography package, for protocols.dc09_link and dc09: aes(key, 1) is ECB,
# aes(key, 2, iv) CBC; encrypt()/decrypt() return the result or write it into a
# buffer, and an object keeps its direction and chain, as cryptolib's does.
# Never on a device (hil/manifest.py): kept apart so that these names do not cost a
# panel interned strings in RAM.
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

AES_KEY_SIZES = (16, 24, 32)


class aes:
    def __init__(self, key, mode, iv=None):
        self.cipher = Cipher(algorithms.AES(key), modes.ECB() if mode == 1 else modes.CBC(iv))
        self.ctx = None

    def _update(self, encrypt, src, dst):
        if self.ctx is None:
            self.ctx = self.cipher.encryptor() if encrypt else self.cipher.decryptor()
        out = self.ctx.update(bytes(src))       # whole blocks: no padding to finalize
        if dst is None:
            return out
        dst[:] = out

    def encrypt(self, src, dst=None):
        return self._update(True, src, dst)

    def decrypt(self, src, dst=None):
        return self._update(False, src, dst)
