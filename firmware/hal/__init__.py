# The thin HAL: everything the app touches on the hardware goes through one object
# with the methods of hal.base.Hal. load(cfg) picks the target.


def load(cfg):
    target = cfg.get("target", "sim")
    if target == "esp32":
        from hal.esp32 import Esp32Hal
        return Esp32Hal(cfg)
    from hal.sim import SimHal
    return SimHal(cfg)
