"""setuptools needs code for one build step: placing the start-up hook files
(``openrlhf_mtgrpo.pth`` and its PEP 829 twin ``openrlhf_mtgrpo.start``) at the top
of site-packages, where the interpreter reads them.  Everything else is in setup.cfg."""

import os

from setuptools import setup
from setuptools.command.build_py import build_py

HOOK_FILES = ("openrlhf_mtgrpo.pth", "openrlhf_mtgrpo.start")


class BuildPyWithStartupHook(build_py):
    def run(self):
        super().run()
        here = os.path.dirname(os.path.abspath(__file__))
        for name in HOOK_FILES:
            self.copy_file(os.path.join(here, "openrlhf_mtgrpo", "_hook", name), os.path.join(self.build_lib, name))

    def get_outputs(self, include_bytecode=True):
        return super().get_outputs(include_bytecode) + [os.path.join(self.build_lib, n) for n in HOOK_FILES]


setup(cmdclass={"build_py": BuildPyWithStartupHook})
