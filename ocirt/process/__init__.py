"""The spawn chain (runtime, intermediate, init), its typed messages, and the init sequence."""
