"""Reading inputs and writing outputs: readers, the output tree, atomic files and markers."""
