package dockerdriver

// WaitLost waits for the removals of lost creates under way.
func (d *Driver) WaitLost() { d.lost.Wait() }
